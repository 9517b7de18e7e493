"""Replaying a recorded schedule: strictly (a token) or leniently (while shrinking)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Strategy


class ReplayDivergence(RuntimeError):
    """The replayed test did not make the same decisions it made when recorded."""


def _default(enabled: list[Any], current: Any) -> Any:
    """Without a recorded choice: keep running the current thread, else the lowest id."""
    return current if current in enabled else enabled[0]


class Replay(Strategy):
    """Follow `decisions` (thread ids, one per decision).

    Strict: any mismatch raises `ReplayDivergence`. Lenient (used to shrink):
    a choice that is not enabled, a `None`, or running out of choices falls back
    to not preempting.
    """

    name = "replay"

    def __init__(self, decisions: Sequence[int | None], *, strict: bool) -> None:
        self.decisions = list(decisions)
        self.strict = strict
        self._position = 0

    def start_execution(self) -> None:
        self._position = 0

    def choose(self, enabled: list[Any], current: Any) -> Any:
        position = self._position
        self._position += 1
        if position >= len(self.decisions):
            if self.strict:
                raise ReplayDivergence(
                    f"the replay needed decision {position + 1} but the token records only "
                    f"{len(self.decisions)}: the test is not deterministic"
                )
            return _default(enabled, current)
        wanted = self.decisions[position]
        for thread in enabled:
            if thread.id == wanted:
                return thread
        if self.strict:
            ids = ", ".join(str(t.id) for t in enabled)
            raise ReplayDivergence(
                f"decision {position + 1} of the token picks thread {wanted}, but only threads "
                f"{ids} can run there: the test is not deterministic (it reads the clock, real "
                "randomness, or state left over from earlier runs), or it changed"
            )
        return _default(enabled, current)

    def finish_execution(self, decisions: int) -> bool:
        if self.strict and self._position < len(self.decisions):
            raise ReplayDivergence(
                f"the replay ended after {self._position} decisions but the token records "
                f"{len(self.decisions)}: the test is not deterministic, or it changed"
            )
        return False
