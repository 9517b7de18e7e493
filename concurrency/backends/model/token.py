"""Replay tokens: a failing schedule as one copy-pasteable string.

A token holds a format version, a 16-bit hash of the test's name (so a token
is not replayed against the wrong test), a CRC of the enabled-thread sets seen
at each decision (so a replay that took another path is detected), and the
decisions themselves (thread ids), run-length encoded as varints in base64url.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass

PREFIX = "cc1-"


class TokenError(ValueError):
    """A string that is not a replay token of this version."""


@dataclass(frozen=True)
class Token:
    test_hash: int
    fingerprint: int
    decisions: tuple[int, ...]

    def encode(self) -> str:
        out = bytearray()
        for number in (self.test_hash, self.fingerprint, len(self.decisions)):
            _put(out, number)
        for thread_id, count in _runs(self.decisions):
            _put(out, thread_id)
            _put(out, count)
        return PREFIX + base64.urlsafe_b64encode(bytes(out)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Token:
        text = text.strip()
        if not text.startswith(PREFIX):
            raise TokenError(f"{text[:20]!r}... is not a replay token (they start with {PREFIX!r})")
        body = text[len(PREFIX):]
        try:
            data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            numbers = _get_all(data)
        except (ValueError, IndexError) as exc:
            raise TokenError(f"replay token is damaged: {exc}") from None
        if len(numbers) < 3 or len(numbers) % 2 == 0:
            raise TokenError("replay token is damaged: wrong length")
        test_hash, fingerprint, count = numbers[:3]
        decisions: list[int] = []
        pairs = numbers[3:]
        for index in range(0, len(pairs), 2):
            decisions.extend([pairs[index]] * pairs[index + 1])
        if len(decisions) != count:
            raise TokenError("replay token is damaged: decision count does not match")
        return cls(test_hash, fingerprint, tuple(decisions))


def test_hash(label: str) -> int:
    return zlib.crc32(label.encode()) & 0xFFFF


def _runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 1)
        else:
            runs.append((value, 1))
    return runs


def _put(out: bytearray, number: int) -> None:
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _get_all(data: bytes) -> list[int]:
    numbers = []
    number = shift = 0
    for byte in data:
        number |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            numbers.append(number)
            number = shift = 0
    if shift:
        raise ValueError("truncated varint")
    return numbers
