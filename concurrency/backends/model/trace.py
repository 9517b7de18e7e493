"""Rendering a traced execution as a swimlane a person can read.

One column per thread, one row per step: the operation, the primitive it
touched, and `file:line` of the user's code. A `*` marks a preemption: the
scheduler switched away from a thread that could have gone on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_CELL = 64
LEGEND = "* = preemption: the scheduler switched away from a thread that could have continued"


def _cell(event: Any) -> str:
    """`[* ]op obj detail  file:line`, shortening the operation text, never the location."""
    what = " ".join(part for part in (event.op, event.obj, event.detail) if part)
    if event.preempted:
        what = "* " + what
    where = f"  {event.location}" if event.location else ""
    room = max(28, MAX_CELL - len(where))
    if len(what) > room:
        what = what[: room - 3] + "..."
    return what + where


def swimlane(events: Sequence[Any], thread_names: Sequence[str]) -> str:
    """The steps of one execution, one column per thread."""
    widths = [len(name) for name in thread_names]
    rows = []
    for event in events:
        cell = _cell(event)
        widths[event.thread] = max(widths[event.thread], len(cell))
        rows.append((event.thread, cell))
    step_width = max(4, len(str(len(rows))))
    header = "step".rjust(step_width) + " | " + " | ".join(
        name.ljust(width) for name, width in zip(thread_names, widths, strict=True)
    )
    lines = [header, "-" * len(header)]
    for number, (thread, cell) in enumerate(rows, 1):
        cells = ["".ljust(width) for width in widths]
        cells[thread] = cell.ljust(widths[thread])
        lines.append(str(number).rjust(step_width) + " | " + " | ".join(cells).rstrip())
    lines.append(LEGEND)
    return "\n".join(lines)
