"""The failure report: what failed, where, how it was found, the trace, how to replay it.

`api` decides *what* to report (the execution, how it was found, whether it
reproduced); this module decides how it reads. One failure, one story:
headline, trace, the user's traceback without the library's frames, replay.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from .runtime import Execution, Failure

MAX_TRACE_ROWS = 250
_MODEL_DIR = __file__.rsplit("/", 1)[0]  # frames of the model runtime itself are noise


@dataclass(frozen=True)
class Finding:
    """How a failure was found: shown in the report's headline."""

    strategy: str                      # "pct (seed 7, depth 3)", "replay of a recorded schedule"
    position: str | None = None        # "execution 12 of at most 100"
    reproduced: tuple[int, int] | None = None  # (replays that failed the same way, replays)
    notes: list[str] = field(default_factory=list)


def failure_message(execution: Execution, finding: Finding, token: str, replay_hint: str) -> str:
    """The whole report for a failing `execution` (traced)."""
    failure = execution.failure
    assert failure is not None
    lines = [
        "concurrency found a failing interleaving",
        "",
        f"  strategy:   {finding.strategy}",
    ]
    if finding.position:
        lines.append(f"  execution:  {finding.position}")
    if finding.reproduced is not None:
        hits, tries = finding.reproduced
        lines.append(f"  reproduced: {hits}/{tries}")
    lines.extend(f"  note:       {note}" for note in finding.notes)
    lines += [
        f"  failure:    {failure.message.splitlines()[0]}",
        "",
        f"Trace ({execution.preemptions} preemptions, {execution.steps} steps, "
        f"{len(execution.threads)} threads):",
        "",
        render_trace(execution),
        "",
        describe_failure(failure),
        "",
        f"Replay token: {token}",
        replay_hint,
    ]
    return "\n".join(lines)


def _without_model_frames(report: traceback.TracebackException) -> None:
    """Drop the model runtime's own frames (noise to the reader), recursively."""
    report.stack = traceback.StackSummary.from_list(
        [frame for frame in report.stack if not frame.filename.startswith(_MODEL_DIR)]
    )
    for inner in (report.__cause__, report.__context__, *(report.exceptions or ())):
        if inner is not None:
            _without_model_frames(inner)


def describe_failure(failure: Failure) -> str:
    """The failure's own story: the deadlock listing, or the exception's traceback."""
    error = failure.error
    if error is None or failure.kind not in ("exception", "poisoned"):
        return failure.message
    report = traceback.TracebackException.from_exception(error)
    _without_model_frames(report)
    return failure.message + "\n\n" + "".join(report.format()).rstrip()


def render_trace(execution: Execution) -> str:
    """The traced steps as a swimlane (the latest MAX_TRACE_ROWS of a long one)."""
    from .trace import swimlane

    events = execution.events
    names = [thread.name for thread in execution.threads]
    if len(events) <= MAX_TRACE_ROWS:
        return swimlane(events, names)
    skipped = len(events) - MAX_TRACE_ROWS
    return f"({skipped} earlier steps not shown)\n" + swimlane(events[skipped:], names)
