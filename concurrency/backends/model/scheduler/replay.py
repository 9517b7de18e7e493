"""Replaying a recorded schedule: strictly (a token, a reproduction) or leniently (shrinking)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Strategy

LIKELY_CAUSES = (
    "Something the test reads besides the schedule differs between runs: the clock "
    "(time.time, datetime.now), random numbers without a fixed seed, object ids or the "
    "iteration order of a set or dict keyed by them, I/O, or state kept between executions "
    "(module globals, caches, class attributes). Or the code changed since the schedule was "
    "recorded: after a fix, run the search again rather than the replay."
)


class ReplayDivergence(AssertionError):
    """A replay did not follow the recorded schedule: the test is not deterministic.

    `.decision` is the 1-based decision where it first differed (None when every
    decision matched but the outcome did not), `.recorded` and `.replayed` say
    what each run did there.
    """

    def __init__(self, message: str, *, decision: int | None = None, recorded: str = "",
                 replayed: str = "") -> None:
        super().__init__(message)
        self.decision = decision
        self.recorded = recorded
        self.replayed = replayed


ReplayDivergence.__module__ = "concurrency"


def _default(enabled: list[Any], current: Any) -> Any:
    """Without a recorded choice: keep running the current thread, else the lowest id."""
    return current if current in enabled else enabled[0]


def _names(threads: Sequence[Any], mask: int) -> str:
    chosen = [thread.name for thread in threads if thread.bit & mask]
    return ", ".join(chosen) if chosen else "no thread"


def _doing(thread: Any) -> str:
    """What `thread` waits to do at this point: `lock Mutex#1 at test.py:12`."""
    obj = getattr(thread.obj, "name", "") if thread.obj is not None else ""
    what = f"{thread.op} {obj}".strip()
    location = thread.execution.location_of(thread)
    return f"{what} at {location}" if location != "?" else what


class Replay(Strategy):
    """Follow `decisions` (thread ids, one per decision).

    Strict: the first decision where the recorded enabled threads (`masks`) or
    the recorded choice do not match raises `ReplayDivergence`, naming it.
    Lenient (shrinking): a choice that is not enabled, a `None`, or running out
    of choices falls back to not preempting.
    """

    name = "replay"

    def __init__(self, decisions: Sequence[int | None], *, strict: bool,
                 masks: Sequence[int] | None = None) -> None:
        self.decisions = list(decisions)
        self.masks = list(masks) if masks is not None else None
        self.strict = strict
        self._position = 0

    def start_execution(self) -> None:
        self._position = 0

    def choose(self, enabled: list[Any], current: Any) -> Any:
        position = self._position
        self._position += 1
        if position >= len(self.decisions):
            if self.strict:
                self._diverged_beyond_end(position, enabled)
            return _default(enabled, current)
        wanted = self.decisions[position]
        if self.strict and self.masks is not None:
            self._check_enabled(position, enabled, wanted)
        for thread in enabled:
            if thread.id == wanted:
                return thread
        if self.strict:
            threads = enabled[0].execution.threads
            picked = threads[wanted].name if wanted is not None and wanted < len(threads) else "?"
            raise ReplayDivergence(
                f"the replay diverged at decision {position + 1}: the recording ran {picked} "
                f"there, which cannot run now. {LIKELY_CAUSES}",
                decision=position + 1, recorded=f"{picked} ran",
                replayed=f"{_names(threads, sum(t.bit for t in enabled))} could run",
            )
        return _default(enabled, current)

    def _check_enabled(self, position: int, enabled: list[Any], wanted: int | None) -> None:
        assert self.masks is not None
        mask = 0
        for thread in enabled:
            mask |= thread.bit
        recorded = self.masks[position]
        if mask == recorded:
            return
        execution = enabled[0].execution
        threads = execution.threads
        picked = threads[wanted].name if wanted is not None and wanted < len(threads) else "?"
        recorded_text = f"{_names(threads, recorded)} could run, and {picked} ran"
        replayed_text = f"{_names(threads, mask)} could run"
        differing = [t for t in threads if (t.bit & mask) != (t.bit & recorded)]
        details = "".join(
            f"\n  {t.name}: {'could run' if t.bit & recorded else 'was blocked'} when recorded, "
            f"{'can run' if t.bit & mask else 'is blocked'} now"
            + (f" ({_doing(t)})" if not t.finished else " (finished)")
            for t in differing
        )
        raise ReplayDivergence(
            f"the replay diverged from the recorded schedule at decision {position + 1} "
            f"(step {execution.steps}): when recorded, {recorded_text}; now {replayed_text}."
            f"{details}\n{LIKELY_CAUSES}",
            decision=position + 1, recorded=recorded_text, replayed=replayed_text,
        )

    def _diverged_beyond_end(self, position: int, enabled: list[Any]) -> None:
        threads = enabled[0].execution.threads
        mask = sum(t.bit for t in enabled)
        raise ReplayDivergence(
            f"the replay diverged at decision {position + 1}: the recording ended after "
            f"{len(self.decisions)} decisions, but here {_names(threads, mask)} can still run. "
            f"{LIKELY_CAUSES}",
            decision=position + 1, recorded="the execution had ended",
            replayed=f"{_names(threads, mask)} could run",
        )

    def finish_execution(self, decisions: int) -> bool:
        if self.strict and self._position < len(self.decisions):
            raise ReplayDivergence(
                f"the replay diverged at decision {self._position + 1}: the execution ended "
                f"after {self._position} decisions, but the recording made "
                f"{len(self.decisions)}. {LIKELY_CAUSES}",
                decision=self._position + 1,
                recorded=f"{len(self.decisions)} decisions", replayed="the execution ended",
            )
        return False
