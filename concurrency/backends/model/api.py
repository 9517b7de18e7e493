"""The model checker's public entry points: `check`, `replay`, `Report`, `ScheduleFailure`.

`check` works in any process, whatever `CONCURRENCY_BACKEND` says: objects
created inside the checked function are modelled, whatever the backend.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..._config import MODEL_STRATEGIES
from ..._errors import IncompleteSearchWarning
from .runtime import Execution
from .scheduler import PCT, DepthFirst, RandomWalk, Replay, ReplayDivergence, Strategy
from .search import Progress, progress_wanted, run_once, shrink
from .story import Finding, failure_message, render_trace
from .token import Token, TokenError, test_hash

DEFAULT_ITERATIONS = {"random": 1000, "pct": 1000, "dfs": 100_000}
TEST_ITERATIONS = {"random": 100, "pct": 100, "dfs": 1000}
DEFAULT_MAX_STEPS = 20_000

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


def _failure_error(execution: Execution, *, strategy: str, seed: int | None, iteration: int, label: str,
                   finding: Finding, command: str | None) -> ScheduleFailure:
    failure = execution.failure
    assert failure is not None
    token = Token(test_hash(label), execution.fingerprint, tuple(execution.decisions)).encode()
    message = failure_message(execution, finding, token, _replay_hint(token, label, command))
    error = ScheduleFailure(message, replay=token, iteration=iteration, strategy=strategy,
                            seed=seed, trace=render_trace(execution), kind=failure.kind)
    error.__cause__ = failure.error
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
    if not callable(fn):
        raise TypeError(f"check: {fn!r} is not callable")
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
                          command=replay_command)
        ticker.tick(executions)
        if not more or executions >= iterations:
            break
    ticker.tick(executions, force=ticker.last > ticker.started)
    seed_used = None if strategy == "dfs" else seed
    bounded = strategy == "dfs" and preemption_bound is not None
    return Report(strategy, executions, explorer.exhausted, seed_used,
                  round(time.perf_counter() - ticker.started, 3), steps, pruned,
                  bounded, preemption_bound if bounded else None)


def _report(fn: Callable[[], Any], found: Execution, *, strategy: str, seed: int, iteration: int,
            limit: int, pct_depth: int, label: str, command: str | None) -> ScheduleFailure:
    """Shrink the failing schedule, replay it traced, and build the error."""
    assert found.failure is not None
    max_steps = found.max_steps
    best = shrink(fn, found, max_steps)
    traced = run_once(fn, Replay(best.decisions, strict=False), max_steps, trace=True)
    if traced.failure is None or traced.failure.signature() != found.failure.signature():
        traced = run_once(fn, Replay(found.decisions, strict=False), max_steps, trace=True)
    settings = f"seed {seed}" if strategy != "dfs" else "exhaustive"
    if strategy == "pct":
        settings += f", depth {pct_depth}"
    finding = Finding(f"{strategy} ({settings})", f"{iteration} of at most {limit}")
    if traced.failure is None:  # the schedule does not reproduce: report what we saw
        traced = found
        finding.notes.append("the failure did not reproduce on replay; the test may be flaky")
    return _failure_error(traced, strategy=strategy, seed=None if strategy == "dfs" else seed,
                          iteration=iteration, label=label, finding=finding, command=command)


def replay(fn: Callable[[], Any], token: str, *, max_steps: int | None = None,
           replay_command: str | None = None) -> Report:
    """Re-run exactly the interleaving `token` recorded; raise its `ScheduleFailure` again.

    Raises `ReplayDivergence` when the run does not follow the recorded
    decisions (the test reads the clock or real randomness, or it changed).
    """
    decoded = Token.decode(token)
    label = _label(fn)
    if decoded.test_hash != test_hash(label):
        raise ReplayDivergence(f"this replay token was recorded for another test, not {label}")
    max_steps = _positive("max_steps", max_steps) or DEFAULT_MAX_STEPS
    strategy = Replay(decoded.decisions, strict=True)
    execution = run_once(fn, strategy, max_steps, trace=True)
    if execution.failure is None or len(execution.decisions) == len(decoded.decisions):
        strategy.finish_execution(len(execution.decisions))
    if execution.fingerprint != decoded.fingerprint:
        raise ReplayDivergence(
            "the replay made the recorded decisions but saw different threads enabled at them: "
            "the test is not deterministic (it reads the clock, real randomness, or state left "
            "over from earlier runs), or it changed since the token was printed"
        )
    if execution.failure is not None:
        raise _failure_error(execution, strategy="replay", seed=None, iteration=1, label=label,
                             finding=Finding("replay of a recorded schedule"),
                             command=replay_command)
    return Report("replay", 1, False, None, 0.0, execution.steps)


# --------------------------------------------------------------------------- @concurrency.test


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def token_is_for(token: str, fn: Callable[..., Any]) -> bool:
    """Whether replay token `token` was recorded for `fn` (a malformed token raises)."""
    return Token.decode(token).test_hash == test_hash(_label(fn))


def _pytest_command() -> str | None:
    current = os.environ.get("PYTEST_CURRENT_TEST")
    if not current:
        return None
    node = current.rsplit(" (", 1)[0]
    return f"pytest '{node}'"


def run_model_test(call: Callable[[], Any], body: Callable[..., Any], strategy: str,
                   options: dict[str, Any]) -> None:
    """Run one `@concurrency.test` body under the model (or replay it)."""
    token = os.environ.get("CONCURRENCY_REPLAY")
    command = _pytest_command()
    if token and token_is_for(token, body):
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
    current = os.environ.get("PYTEST_CURRENT_TEST")
    name = current.rsplit(" (", 1)[0] if current else _label(body)
    message = (
        f"{name}: dfs explored {report.iterations} schedules and stopped at its budget, "
        "NOT the whole schedule space; raise iterations= (or CONCURRENCY_ITERATIONS), "
        "or bound the search with preemption_bound="
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
