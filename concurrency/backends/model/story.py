"""The failure report: what failed, where, how it was found, the trace, how to replay it.

`api` decides *what* to report (the execution, how it was found, whether it
reproduced); this module decides how it reads. One failure, one story:

1. the headline, the message's first line (what pytest's summary shows):
   `AssertionError in thread worker-2: balance went negative`, or
   `deadlock: worker-1 waits for b held by worker-2; worker-2 waits for a held by worker-1`;
2. how it was found (strategy, execution k of n, reproduced k/n);
3. the trace of the failing interleaving (at most 100 columns wide);
4. the details: the blocked threads of a deadlock, or the user's traceback
   with the library's own frames hidden;
5. how to replay it.
"""

from __future__ import annotations

import os
import re
import traceback
from dataclasses import dataclass, field

from .runtime import Execution, Failure, label, leaves, raised_in
from .trace import Step, render

MAX_TRACE_ROWS = 250
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_EXAMPLES_DIR = os.path.join(_PACKAGE_DIR, "examples")


@dataclass(frozen=True)
class Finding:
    """How a failure was found: shown under the headline."""

    strategy: str                      # "pct (seed 7, depth 3)", "replay of a recorded schedule"
    position: str | None = None        # "execution 12 of at most 100"
    reproduced: tuple[int, int] | None = None  # (replays that failed the same way, replays)
    notes: list[str] = field(default_factory=list)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def headline(failure: Failure) -> str:
    """One line: what failed and in which thread."""
    first = failure.message.split("\n", 1)[0]
    if failure.kind == "max_steps" and failure.thread:
        return f"{first} (last step in thread {failure.thread})"
    return first


def failure_message(execution: Execution, finding: Finding, token: str, replay_hint: str) -> str:
    """The whole report for a failing `execution` (traced); its first line is the headline."""
    failure = execution.failure
    assert failure is not None
    lines = [headline(failure), "", f"  strategy:   {finding.strategy}"]
    if finding.position:
        lines.append(f"  execution:  {finding.position}")
    if finding.reproduced is not None:
        hits, tries = finding.reproduced
        lines.append(f"  reproduced: {hits}/{tries}")
    lines.extend(f"  note:       {note}" for note in finding.notes)
    lines += [
        "",
        f"Trace ({trace_summary(execution)}):",
        render_trace(execution),
    ]
    details = describe_failure(failure)
    if details:
        lines += ["", details]
    lines += ["", f"Replay token: {token}", replay_hint]
    return "\n".join(lines)


def trace_summary(execution: Execution) -> str:
    """`16 steps, 1 preemption, 3 threads`: the steps are the trace's rows."""
    return (f"{_plural(len(execution.events), 'step')}, "
            f"{_plural(execution.preemptions, 'preemption')}, "
            f"{_plural(len(execution.threads), 'thread')}")


# --------------------------------------------------------------------------- the details


def _is_library(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_PACKAGE_DIR + os.sep) and not path.startswith(_EXAMPLES_DIR + os.sep)


def _user_frames(stack: traceback.StackSummary) -> traceback.StackSummary:
    """The frames of `stack` outside the library; a `contextlib` frame only bridging into
    the library (`with thread.scope()`) goes too."""
    frames = list(stack)
    kept = []
    for index, frame in enumerate(frames):
        if _is_library(frame.filename):
            continue
        if frame.filename.endswith("contextlib.py"):
            following = frames[index + 1:]
            if not following or _is_library(following[0].filename):
                continue
        kept.append(frame)
    return traceback.StackSummary.from_list(kept)


def _without_library_frames(report: traceback.TracebackException) -> None:
    """Drop the library's own frames (noise to the reader), recursively."""
    report.stack = _user_frames(report.stack)
    for inner in (report.__cause__, report.__context__, *(report.exceptions or ())):
        if inner is not None:
            _without_library_frames(inner)


def user_traceback(error: BaseException) -> str:
    """The traceback of `error` (groups, causes and all) without the library's frames."""
    report = traceback.TracebackException.from_exception(error)
    _without_library_frames(report)
    return "".join(report.format()).rstrip()


def describe_failure(failure: Failure) -> str:
    """What follows the trace: the message's details (a deadlock's blocked threads, where an
    exception was re-raised), then the exception's traceback without library frames."""
    details = failure.message.split("\n", 1)[1] if "\n" in failure.message else ""
    error = failure.error
    if error is None or failure.kind not in ("exception", "poisoned"):
        return details
    story = user_traceback(error)
    return f"{details}\n\n{story}" if details else story


# --------------------------------------------------------------------------- the trace


_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")  # differs run to run: a replay must print the same


LONG_OUTCOME = 48  # an exception the report shows in full below is named, not repeated, if longer


def _outcome(error: BaseException, reported: bool) -> str:
    """`ValueError('bad input')`. An exception the report shows in full below (with its
    traceback) is shortened: a multi-line message to its first line, a long one to the type."""
    outcome = repr(error)
    if not reported:
        return outcome
    text = str(error)
    if "\n" in text:
        outcome = f"{type(error).__name__}({text.split(chr(10), 1)[0] + ' ...'!r})"
    if len(outcome) > LONG_OUTCOME:
        outcome = f"{type(error).__name__} (in full below)"
    return outcome


def _exit_text(execution: Execution, thread_id: int, detail: str) -> str:
    """`exit returned` / `exit raised ValueError('x')`; for a group, what it holds: an
    exception from another thread by its type and thread (its own exit row has the rest)."""
    thread = execution.threads[thread_id]
    error = thread.error
    if error is None or not detail.startswith("raised"):
        return f"exit {detail}".strip()
    failure = execution.failure
    reported = failure is not None and failure.error is not None and (
        error is failure.error or any(error is leaf for leaf in leaves(failure.error)))
    if not isinstance(error, BaseExceptionGroup):
        origin = raised_in(execution, error, thread)
        came = "" if origin is thread else f" from {label(origin)}"
        return f"exit raised {_outcome(error, reported)}{came}"
    inner = []
    for leaf in leaves(error):
        origin = raised_in(execution, leaf, thread)
        inner.append(_outcome(leaf, reported) if origin is thread
                     else f"{type(leaf).__name__} from {label(origin)}")
    return f"exit raised {type(error).__name__} of {', '.join(inner)}"


def _raised_at(error: BaseException) -> str:
    """`file:line` of the innermost frame of the user's code that `error` went through."""
    where = ""
    tb = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not _is_library(filename) and not filename.endswith("contextlib.py"):
            where = f"{os.path.basename(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _steps(execution: Execution, first: int) -> list[Step]:
    """The rows of the trace from event `first` on. An exit by an exception is placed where
    the thread raised it, or for one re-raised from another thread (by `join`), at the
    thread's last step (where it got it)."""
    steps = []
    last: dict[int, str] = {}
    for event in execution.events[:first]:
        last[event.thread] = event.location or last.get(event.thread, "")
    for number, event in enumerate(execution.events[first:], first + 1):
        location = event.location
        if event.op == "exit":
            text = _exit_text(execution, event.thread, event.detail)
            thread = execution.threads[event.thread]
            error = thread.error
            if not location and error is not None and event.detail.startswith("raised"):
                own = raised_in(execution, error, thread) is thread
                location = _raised_at(error) if own else last.get(event.thread, "")
        else:
            text = " ".join(part for part in (event.op, event.obj, event.detail) if part)
        text = _ADDRESS.sub("0x...", text)
        last[event.thread] = location or last.get(event.thread, "")
        steps.append(Step(number, event.thread, text, location, event.preempted))
    return steps


def render_trace(execution: Execution) -> str:
    """The traced steps as a table (the latest MAX_TRACE_ROWS of a long execution)."""
    names = [label(thread) for thread in execution.threads]
    skipped = max(0, len(execution.events) - MAX_TRACE_ROWS)
    table = render(_steps(execution, skipped), names)
    if skipped:
        return f"({skipped} earlier steps not shown)\n{table}"
    return table
