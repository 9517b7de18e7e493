"""Driving executions: run one under a strategy, show progress, shrink a failure.

Searching records only decisions (cheap); once a failure is found it is
shrunk by lenient replays (fewer preemptions, then fewer steps, while it still
fails the same way) and the shrunk schedule is replayed once with tracing on.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import primitives
from .runtime import Execution
from .scheduler import DepthFirst, Replay, Strategy
from .scheduler.dfs import NondeterminismError
from .thread import JoinHandle

SHRINK_MIN_SECONDS = 1.0   # shrinking may take this long at least,
SHRINK_SEARCH_FACTOR = 10  # or this many times as long as the search that found the failure
SHRINK_ATTEMPTS = 400
BOUNDED_SEARCH_EXECUTIONS = 300


def run_once(fn: Callable[[], Any], strategy: Strategy, max_steps: int, *,
             trace: bool = False) -> Execution:
    """One execution of `fn` under `strategy`."""
    strategy.start_execution()
    execution = Execution(strategy, primitives, max_steps=max_steps, trace=trace)
    execution.run(fn, JoinHandle)
    return execution


@dataclass
class Progress:
    """Prints a progress line for long searches (to a terminal only)."""

    strategy: str
    enabled: bool
    started: float = 0.0
    last: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.last = time.perf_counter()

    def tick(self, executions: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < 0.5 and not force:
            return
        self.last = now
        elapsed = now - self.started
        if elapsed < 2.0 and not force:
            return
        rate = executions / elapsed if elapsed else 0.0
        stream = sys.__stderr__
        if stream is not None:
            stream.write(f"\r[concurrency] {self.strategy}: {executions:,} executions "
                         f"({rate:,.0f}/s, {elapsed:.0f}s)   ")
            if force:
                stream.write("\n")
            stream.flush()


def progress_wanted(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    stream = sys.__stderr__
    return bool(stream is not None and stream.isatty())


# --------------------------------------------------------------------------- shrinking


def _better(candidate: Execution, best: Execution) -> bool:
    return (candidate.preemptions, candidate.steps) < (best.preemptions, best.steps)


class _OutOfTime(Exception):
    """The shrinking budget ran out."""


def _fewest_preemptions(fn: Callable[[], Any], found: Execution, max_steps: int,
                        deadline: float) -> Execution:
    """Search DFS with preemption bounds 0, 1, ... for the same failure (small budgets).

    Most bugs need one or two preemptions; a random schedule that found one
    often has many more, and removing them one at a time can stall.
    """
    assert found.failure is not None
    signature = found.failure.signature()
    for bound in range(found.preemptions):
        explorer = DepthFirst(bound)
        for _ in range(BOUNDED_SEARCH_EXECUTIONS):
            if time.perf_counter() >= deadline:
                raise _OutOfTime
            try:
                execution = run_once(fn, explorer, max_steps)
            except NondeterminismError:
                return found
            more = explorer.finish_execution(len(execution.decisions))
            failure = execution.failure
            if failure is not None and failure.signature() == signature and _better(execution, found):
                return execution
            if not more:
                break
    return found


def shrink(fn: Callable[[], Any], found: Execution, max_steps: int,
           seconds: float) -> tuple[Execution, bool]:
    """A schedule that fails the same way with fewer preemptions and steps, if one is found.

    First a bounded DFS for the fewest preemptions, then greedy removal of the
    preemptions that remain (latest first), each kept only if it still fails
    the same way. Returns the best schedule and whether the `seconds` budget
    (or the attempt limit) cut shrinking short.
    """
    assert found.failure is not None
    if found.failure.kind == "max_steps":
        return found, False  # every shorter schedule stops earlier; nothing to gain
    signature = found.failure.signature()
    deadline = time.perf_counter() + seconds
    attempts = 0
    try:
        best = _fewest_preemptions(fn, found, max_steps, deadline)
    except _OutOfTime:
        return found, True

    def attempt(decisions: Sequence[int | None]) -> Execution | None:
        nonlocal attempts
        attempts += 1
        execution = run_once(fn, Replay(decisions, strict=False), max_steps)
        failure = execution.failure
        if failure is not None and failure.signature() == signature and _better(execution, best):
            return execution
        return None

    improved = True
    while improved:
        improved = False
        preempting = [i for i, flag in enumerate(best.preempting) if flag]
        for index in reversed(preempting):
            if attempts >= SHRINK_ATTEMPTS or time.perf_counter() >= deadline:
                return best, True
            decisions = list(best.decisions)
            # First drop this preemption and everything after it, then only this one.
            for candidate in (decisions[:index], [*decisions[:index], None, *decisions[index + 1:]]):
                better = attempt(candidate)
                if better is not None:
                    best = better
                    improved = True
                    break
            if improved:
                break
    return best, False
