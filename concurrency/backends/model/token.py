"""Replay tokens: a failing schedule as one copy-pasteable string.

A token names the test it was recorded for and the failure it recorded
(`exception:AssertionError`, `deadlock`), and holds, for each decision, the
thread that ran and the set of threads that could run (a bit mask). The masks
let a replay say exactly where it stopped following the recording. Numbers
are run-length encoded varints; a CRC-32 of the whole closes the token, so a
damaged token is reported as damaged, never replayed as another schedule.

    cc2-<base64url( label, failure, decisions, masks, crc32 )>
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "cc2-"
_OLD_PREFIXES = ("cc1-",)


class TokenError(ValueError):
    """A string that is not a usable replay token: damaged, of another version or another test."""


@dataclass(frozen=True)
class Token:
    label: str                     # the test it was recorded for: module.qualname
    failure: str                   # what failed: Failure.signature() joined by ":"
    decisions: tuple[int, ...]     # the thread id picked at each decision
    masks: tuple[int, ...]         # the enabled threads at each decision (bit per thread)

    def encode(self) -> str:
        out = bytearray()
        _put_text(out, self.label)
        _put_text(out, self.failure)
        _put_runs(out, self.decisions)
        _put_runs(out, self.masks)
        out += zlib.crc32(bytes(out)).to_bytes(4, "big")
        return PREFIX + base64.urlsafe_b64encode(bytes(out)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Token:
        text = text.strip()
        if text.startswith(_OLD_PREFIXES):
            raise TokenError(
                "this replay token was printed by an older version of concurrency; run the "
                "search again to get a token for this version"
            )
        if not text.startswith(PREFIX):
            raise TokenError(f"{_shorten(text)} is not a replay token (they start with {PREFIX!r}): "
                             "copy the whole token from the failure report")
        data = _unpack(text[len(PREFIX):])
        reader = _Reader(data[:-4])
        try:
            label = reader.text()
            failure = reader.text()
            decisions = reader.runs()
            masks = reader.runs()
            reader.end()
        except (ValueError, IndexError, UnicodeDecodeError):
            raise _damaged() from None
        if len(masks) != len(decisions):
            raise _damaged()
        return cls(label, failure, decisions, masks)


def _damaged() -> TokenError:
    return TokenError("this replay token is damaged (its checksum does not match): "
                      "copy the whole token again from the failure report")


def _shorten(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:20] + "...")


def _unpack(body: str) -> bytes:
    """The token's bytes, checked: canonical base64url with a matching CRC-32 at the end."""
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise _damaged() from None
    # A changed character must never decode to a token: the encoding must be the one we print.
    canonical = base64.urlsafe_b64encode(data).decode().rstrip("=")
    if canonical != body or len(data) < 5:
        raise _damaged()
    if zlib.crc32(data[:-4]).to_bytes(4, "big") != data[-4:]:
        raise _damaged()
    return data


def _put(out: bytearray, number: int) -> None:
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _put_text(out: bytearray, text: str) -> None:
    raw = text.encode()
    _put(out, len(raw))
    out += raw


def _put_runs(out: bytearray, values: Sequence[int]) -> None:
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    _put(out, len(runs))
    for value, count in runs:
        _put(out, value)
        _put(out, count)


class _Reader:
    """Reads back what `_put*` wrote."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def number(self) -> int:
        number = shift = 0
        while True:
            byte = self.data[self.position]
            self.position += 1
            number |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return number

    def text(self) -> str:
        length = self.number()
        raw = self.data[self.position:self.position + length]
        if len(raw) != length:
            raise ValueError("truncated text")
        self.position += length
        return raw.decode()

    def runs(self) -> tuple[int, ...]:
        values: list[int] = []
        for _ in range(self.number()):
            value, count = self.number(), self.number()
            values.extend([value] * count)
        return tuple(values)

    def end(self) -> None:
        if self.position != len(self.data):
            raise ValueError("trailing bytes")
