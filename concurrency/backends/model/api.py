"""The model checker's public entry points: `check`, `replay`, `Report`, `ScheduleFailure`.

`check` works in any process, whatever `CONCURRENCY_BACKEND` says: objects
created inside the checked function are modelled, whatever the backend.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ..._config import MODEL_STRATEGIES
from ..._errors import IncompleteSearchWarning
from .runtime import Execution, Failure
from .scheduler import PCT, DepthFirst, RandomWalk, Replay, ReplayDivergence, Strategy
from .scheduler.replay import LIKELY_CAUSES
from .search import SHRINK_MIN_SECONDS, SHRINK_SEARCH_FACTOR, Progress, progress_wanted, run_once, shrink
from .story import Finding, failure_message, render_trace
from .token import Token, TokenError

DEFAULT_ITERATIONS = {"random": 1000, "pct": 1000, "dfs": 100_000}
TEST_ITERATIONS = {"random": 100, "pct": 100, "dfs": 1000}
DEFAULT_MAX_STEPS = 20_000
REPRODUCTIONS = 3  # replays of a failing schedule before it is reported

__all__ = [
    "ReplayDivergence",
    "Report",
    "ScheduleFailure",
    "TokenError",
    "check",
    "replay",
]


@dataclass(frozen=True)
class Report:
    """What a search that found no failure did, and how much of the schedule space it covered.

    `exhausted`: the search covered every schedule (only dfs can), or with
    `bounded` every schedule within the preemption bound. `complete` says the
    whole space: exhausted and not bounded.
    """

    strategy: str
    iterations: int
    exhausted: bool
    seed: int | None
    seconds: float
    steps: int
    pruned: int = 0  # DFS runs cut short because they repeat an execution already explored
    bounded: bool = False  # a preemption_bound limited the search
    preemption_bound: int | None = None

    @property
    def complete(self) -> bool:
        """Whether every schedule of the whole space was explored (a proof, not a sample)."""
        return self.exhausted and not self.bounded

    def coverage(self) -> str:
        """How much of the schedule space the search covered, in words."""
        if self.strategy == "replay":
            return "one recorded schedule"
        if self.complete:
            return "the whole schedule space"
        if self.exhausted:
            return (f"every schedule with at most {self.preemption_bound} preemption"
                    f"{'' if self.preemption_bound == 1 else 's'}: NOT the whole space")
        if self.strategy == "dfs":
            return "stopped at its budget: NOT the whole space"
        return "a sample: NOT the whole space"

    def __str__(self) -> str:
        pruned = f" ({self.pruned} cut short as repeats)" if self.pruned else ""
        plural = "" if self.iterations == 1 else "s"
        return (f"{self.strategy}: {self.iterations} execution{plural}{pruned}, {self.coverage()}, "
                f"{self.steps} steps, {self.seconds:.2f}s, no failure")


class ScheduleFailure(AssertionError):
    """A failing interleaving: `.replay` is its token, `.iteration` the failing execution."""

    error: BaseException | None = None  # what the test raised (None for a deadlock, a livelock)

    def __init__(self, message: str, *, replay: str, iteration: int, strategy: str,
                 seed: int | None, trace: str, kind: str) -> None:
        super().__init__(message)
        self.replay = replay
        self.iteration = iteration
        self.strategy = strategy
        self.seed = seed
        self.trace = trace
        self.kind = kind


for _public in (Report, ScheduleFailure):
    _public.__module__ = "concurrency"


def _label(fn: Callable[..., Any]) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def refuse_unrunnable(what: str, fn: Callable[..., Any]) -> None:
    """A coroutine or generator function would "pass" without running its body: refuse it."""
    target = fn
    while isinstance(target, functools.partial):
        target = target.func
    kinds = (
        (inspect.iscoroutinefunction, "an async function"),
        (inspect.isasyncgenfunction, "an async generator function"),
        (inspect.isgeneratorfunction, "a generator function"),
    )
    for test, kind in kinds:
        if test(target):
            raise TypeError(
                f"{what}: {_label(fn)} is {kind}: calling it only creates an object and runs "
                "none of its body, so every schedule would pass unseen. Check a plain function "
                "(threads, not async tasks; no yield)"
            )


def _positive(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _make_strategy(strategy: str, seed: int, pct_depth: int,
                   preemption_bound: int | None) -> Strategy:
    if strategy == "random":
        return RandomWalk(seed)
    if strategy == "pct":
        return PCT(seed, pct_depth)
    if strategy == "dfs":
        return DepthFirst(preemption_bound)
    raise ValueError(
        f"strategy={strategy!r} is not a model strategy; choose one of: {', '.join(MODEL_STRATEGIES)}"
    )


def _replay_hint(token: str, label: str, command: str | None) -> str:
    module, _, name = label.rpartition(".")
    lines = ["Replay it:"]
    if command:
        lines.append("  " + command.replace("{token}", token))
    lines.append(f"  concurrency.replay({name}, {token!r})   # {module}")
    return "\n".join(lines)


def _signature(failure: Failure) -> str:
    """A failure's signature as a token records it: `exception:AssertionError`, `deadlock:`."""
    return ":".join(failure.signature())


def _failure_error(execution: Execution, *, strategy: str, seed: int | None, iteration: int,
                   label: str, finding: Finding, command: str | None,
                   kind: str | None = None) -> ScheduleFailure:
    failure = execution.failure
    assert failure is not None
    token = Token(label, _signature(failure), tuple(execution.decisions),
                  tuple(execution.masks)).encode()
    message = failure_message(execution, finding, token, _replay_hint(token, label, command))
    error = ScheduleFailure(message, replay=token, iteration=iteration, strategy=strategy,
                            seed=seed, trace=render_trace(execution), kind=kind or failure.kind)
    error.error = failure.error  # not chained: the message already shows its traceback
    return error


def check(
    fn: Callable[[], Any],
    strategy: str = "random",
    iterations: int | None = None,
    seed: int | None = None,
    pct_depth: int = 3,
    max_steps: int | None = None,
    preemption_bound: int | None = None,
    *,
    progress: bool | None = None,
    replay_command: str | None = None,
) -> Report:
    """Run `fn` under the model checker until a failure or `iterations` executions.

    Raises `ScheduleFailure` with a replay token and a trace of the (shrunk)
    failing schedule. DFS stops early when it has covered every schedule
    (`Report.exhausted`). `seed` defaults to a hash of the function's name, so
    runs are reproducible; pass another to explore differently.
    """
    __tracebackhide__ = True  # pytest: show the test's frames, not the checker's
    if not callable(fn):
        raise TypeError(f"check: {fn!r} is not callable")
    refuse_unrunnable("check", fn)
    iterations = _positive("iterations", iterations) or DEFAULT_ITERATIONS.get(strategy, 1000)
    max_steps = _positive("max_steps", max_steps) or DEFAULT_MAX_STEPS
    label = _label(fn)
    if seed is None:
        seed = zlib.crc32(label.encode())
    explorer = _make_strategy(strategy, seed, pct_depth, preemption_bound)
    ticker = Progress(strategy, progress_wanted(progress))
    steps = 0
    executions = 0
    pruned = 0
    while True:
        execution = run_once(fn, explorer, max_steps)
        steps += execution.steps
        more = explorer.finish_execution(len(execution.decisions))
        if execution.pruned:  # a repeat cut short: not an execution of its own
            pruned += 1
            if not more:
                break
            continue
        executions += 1
        if execution.failure is not None:
            ticker.tick(executions, force=ticker.last > ticker.started)
            raise _report(fn, execution, strategy=strategy, seed=seed, iteration=executions,
                          limit=iterations, pct_depth=pct_depth, label=label,
                          command=replay_command,
                          search_seconds=time.perf_counter() - ticker.started)
        ticker.tick(executions)
        if not more or executions >= iterations:
            break
    ticker.tick(executions, force=ticker.last > ticker.started)
    seed_used = None if strategy == "dfs" else seed
    bounded = strategy == "dfs" and preemption_bound is not None
    return Report(strategy, executions, explorer.exhausted, seed_used,
                  round(time.perf_counter() - ticker.started, 3), steps, pruned,
                  bounded, preemption_bound if bounded else None)


@dataclass
class _Reproduction:
    """What replaying a failing schedule REPRODUCTIONS times showed."""

    hits: int = 0                                 # replays that failed the same way
    tries: int = 0
    traced: Execution | None = None               # the first of those, traced
    divergence: ReplayDivergence | None = None    # the first replay that left the schedule
    other: Execution | None = None                # the first that followed it but ended otherwise


def _reproduce(fn: Callable[[], Any], schedule: Execution, signature: tuple[str, str]) -> _Reproduction:
    """Replay `schedule` strictly, traced, REPRODUCTIONS times: does the failure recur?"""
    seen = _Reproduction()
    for _ in range(REPRODUCTIONS):
        seen.tries += 1
        try:
            execution = _replay_strictly(fn, schedule.decisions, schedule.masks, schedule.max_steps)
        except ReplayDivergence as divergence:
            seen.divergence = seen.divergence or divergence
            continue
        if execution.failure is not None and execution.failure.signature() == signature:
            seen.hits += 1
            seen.traced = seen.traced or execution
        else:
            seen.other = seen.other or execution
    return seen


def _replay_strictly(fn: Callable[[], Any], decisions: Sequence[int], masks: Sequence[int],
                     max_steps: int) -> Execution:
    """One traced replay that raises ReplayDivergence where it leaves the schedule."""
    strategy = Replay(decisions, strict=True, masks=masks)
    execution = run_once(fn, strategy, max_steps, trace=True)
    if execution.failure is None or len(execution.decisions) == len(decisions):
        strategy.finish_execution(len(execution.decisions))  # it must have made every decision
    return execution


def _how_it_ended(execution: Execution | None) -> str:
    if execution is None or execution.failure is None:
        return "it passed"
    return f"it ended with {execution.failure.message.splitlines()[0]}"


def _report(fn: Callable[[], Any], found: Execution, *, strategy: str, seed: int, iteration: int,
            limit: int, pct_depth: int, label: str, command: str | None,
            search_seconds: float) -> ScheduleFailure:
    """Shrink the failing schedule, check that it reproduces, and build the error."""
    assert found.failure is not None
    signature = found.failure.signature()
    shrink_budget = max(SHRINK_MIN_SECONDS, SHRINK_SEARCH_FACTOR * search_seconds)
    best, shrink_cut = shrink(fn, found, found.max_steps, shrink_budget)
    seen = _reproduce(fn, best, signature)
    if seen.hits == 0 and best is not found:  # the shrunk schedule may have lost it: the original
        seen = _reproduce(fn, found, signature)
    settings = f"seed {seed}" if strategy != "dfs" else "exhaustive"
    if strategy == "pct":
        settings += f", depth {pct_depth}"
    finding = Finding(f"{strategy} ({settings})", f"{iteration} of at most {limit}",
                      (seen.hits, seen.tries))
    if shrink_cut:
        finding.notes.append(f"shrinking stopped at its time budget ({shrink_budget:.1f}s); "
                             "the schedule shown may not be the shortest")
    seed_shown = None if strategy == "dfs" else seed
    if seen.traced is not None:
        if seen.hits < seen.tries:
            finding.notes.append(
                f"flaky: only {seen.hits} of {seen.tries} replays failed the same way "
                f"({_divergence_summary(seen)}); the test is not fully deterministic"
            )
        return _failure_error(seen.traced, strategy=strategy, seed=seed_shown,
                              iteration=iteration, label=label, finding=finding, command=command)
    # It never recurred: the verdict is the test's nondeterminism, shown with what was seen.
    traced = run_once(fn, Replay(found.decisions, strict=False), found.max_steps, trace=True)
    if traced.failure is None or traced.failure.signature() != signature:
        traced = found
    finding.notes.append(
        f"NOT REPRODUCED: the failure did not recur in {seen.tries} replays of its schedule "
        f"({_divergence_summary(seen)}). The test is not deterministic. {LIKELY_CAUSES}"
    )
    return _failure_error(traced, strategy=strategy, seed=seed_shown, iteration=iteration,
                          label=label, finding=finding, command=command, kind="nondeterministic")


def _divergence_summary(seen: _Reproduction) -> str:
    if seen.divergence is not None:
        first = str(seen.divergence).split(". ", 1)[0].split("\n", 1)[0]
        return first.removeprefix("the replay ")
    return f"the replay followed every decision, but {_how_it_ended(seen.other)}"


def replay(fn: Callable[[], Any], token: str, *, max_steps: int | None = None,
           replay_command: str | None = None) -> NoReturn:
    """Re-run exactly the interleaving `token` recorded; raise its `ScheduleFailure` again.

    Raises `ReplayDivergence` when the run does not follow the recorded
    schedule or the recorded failure does not recur (the test is not
    deterministic, or the code changed), and `TokenError` (a ValueError) for a
    damaged token or one recorded for another test.
    """
    __tracebackhide__ = True  # pytest: show the test's frames, not the checker's
    decoded = _token_for(token, fn)
    label = decoded.label
    max_steps = _positive("max_steps", max_steps) or DEFAULT_MAX_STEPS
    execution = _replay_strictly(fn, decoded.decisions, decoded.masks, max_steps)
    failure = execution.failure
    if failure is None or _signature(failure) != decoded.failure:
        raise ReplayDivergence(
            f"the replay followed all {len(decoded.decisions)} recorded decisions, but the "
            f"recorded failure ({decoded.failure.rstrip(':')}) did not recur: "
            f"{_how_it_ended(execution)}. {LIKELY_CAUSES}",
            recorded=decoded.failure.rstrip(":"), replayed=_how_it_ended(execution),
        )
    raise _failure_error(execution, strategy="replay", seed=None, iteration=1, label=label,
                         finding=Finding("replay of a recorded schedule"),
                         command=replay_command)


def _token_for(token: str, fn: Callable[..., Any]) -> Token:
    """Decode `token` and check it was recorded for `fn` (TokenError otherwise)."""
    decoded = Token.decode(token)
    label = _label(fn)
    if decoded.label != label:
        raise TokenError(
            f"this replay token was recorded for {decoded.label}, not {label}: "
            f"replay it with that test"
        )
    return decoded


# --------------------------------------------------------------------------- @concurrency.test


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def check_replay_token(token: str, fn: Callable[..., Any]) -> None:
    """Raise TokenError unless `token` is an intact token recorded for `fn`."""
    _token_for(token, fn)


def _pytest_command() -> str | None:
    current = os.environ.get("PYTEST_CURRENT_TEST")
    if not current:
        return None
    node = current.rsplit(" (", 1)[0]
    return f"pytest '{node}'"


def run_model_test(call: Callable[[], Any], body: Callable[..., Any], strategy: str,
                   options: dict[str, Any]) -> None:
    """Run one `@concurrency.test` body under the model (or replay it)."""
    __tracebackhide__ = True  # pytest: show the test's frames, not the checker's
    token = os.environ.get("CONCURRENCY_REPLAY")
    command = _pytest_command()
    if token:  # a token of another test raises, naming that test
        replay(call, token, max_steps=options.get("max_steps"),
               replay_command=f"CONCURRENCY_REPLAY={{token}} {command}" if command else None)
        return
    iterations = _env_int("CONCURRENCY_ITERATIONS") or options.get("iterations")
    seed = options.get("seed")
    if seed is None:
        seed = _env_int("CONCURRENCY_SEED")
    report = check(
        call,
        strategy,
        iterations=iterations or TEST_ITERATIONS[strategy],
        seed=seed,
        pct_depth=options.get("pct_depth") or 3,
        max_steps=options.get("max_steps"),
        preemption_bound=options.get("preemption_bound"),
        replay_command=(
            "CONCURRENCY_REPLAY={token} " + command if command else None
        ),
    )
    if strategy == "dfs" and not report.exhausted:
        _incomplete_search(body, report)


def strict_wanted() -> bool:
    """Whether `CONCURRENCY_STRICT=1` (pytest: `--concurrency-strict`) asks for proofs."""
    raw = os.environ.get("CONCURRENCY_STRICT", "").strip()
    if raw not in ("", "0", "1"):
        raise ValueError(f"CONCURRENCY_STRICT={raw!r} is not valid; use 1 (strict) or 0")
    return raw == "1"


def _incomplete_search(body: Callable[..., Any], report: Report) -> None:
    """A dfs test stopped at its budget: warn (pass) or, when strict, fail."""
    __tracebackhide__ = True  # pytest: show the test's frames, not the checker's
    current = os.environ.get("PYTEST_CURRENT_TEST")
    name = current.rsplit(" (", 1)[0] if current else _label(body)
    message = (
        f"{name}: dfs explored {report.iterations} schedules and stopped at its budget, "
        "NOT the whole schedule space; raise iterations= (or CONCURRENCY_ITERATIONS), "
        "or bound the search with preemption_bound=N"
    )
    if strict_wanted():
        raise AssertionError(message + " (strict mode: an incomplete search fails)")
    code = getattr(body, "__code__", None)
    if code is None:
        warnings.warn(message, IncompleteSearchWarning, stacklevel=3)
        return
    # Point at the test itself, so the warnings summary names the test's file and line.
    warnings.warn_explicit(message, IncompleteSearchWarning, code.co_filename,
                           code.co_firstlineno, module=getattr(body, "__module__", None))
