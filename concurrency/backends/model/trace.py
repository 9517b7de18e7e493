"""Rendering a traced execution as a table a person can read, in at most 100 columns.

One row per step. While every thread gets a lane of LANE_MIN columns (three
or four threads) the table is a swimlane: one column per thread holding the
operation, the primitive it touched and what it returned, and a last column
with `file:line` of the user's code (only the line when every step is in one
file, named below the table, and that makes the table shorter). With
more threads it is a list: step, thread, operation, location. A cell too long
for its column wraps onto continuation lines (blank step number): nothing is
cut off. A `*` marks a preemption: the scheduler switched away from a thread
that could have gone on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 100  # no line of a trace is longer
LANE_MIN = 16  # narrower lanes than this: the list layout reads better
LOCATION_MAX = 30  # a longer `file:line` wraps rather than squeezing the lanes
SEPARATOR = " | "
LEGEND = "* = preemption: the scheduler switched away from a thread that could have continued"


@dataclass(frozen=True)
class Step:
    """One row: the step's number, its thread's column, what it did, where."""

    number: int
    thread: int
    text: str
    location: str
    preempted: bool = False

    @property
    def cell(self) -> str:
        return "* " + self.text if self.preempted else self.text


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width`, nothing lost: broken at a space where possible
    (the space goes), else after punctuation (`(`, `.`, `_`...), else anywhere."""
    lines = []
    width = max(1, width)
    while len(text) > width:
        cut = text.rfind(" ", 1, width + 1)
        if cut > 0:
            lines.append(text[:cut])
            text = text[cut + 1:]
            continue
        cut = max(text.rfind(mark, 1, width) for mark in "([{,.:;_-/")
        cut = cut + 1 if cut > 0 else width
        lines.append(text[:cut])
        text = text[cut:]
    lines.append(text)
    return lines


def _fit(natural: list[int], minimum: list[int], room: int) -> list[int] | None:
    """Column widths summing to at most `room`, or None if the minimums do not fit.

    Max-min fair: every column gets the same width L (at least its minimum, at
    most its natural width), the largest L that fits; so a column narrower than
    its share keeps its natural width and the wider ones share the rest (and wrap).
    """
    floor = [min(n, m) for n, m in zip(natural, minimum, strict=True)]
    if sum(floor) > room:
        return None

    def at(level: int) -> list[int]:
        return [max(f, min(n, level)) for f, n in zip(floor, natural, strict=True)]

    level = max(natural)
    while sum(at(level)) > room:
        level -= 1
    widths = at(level)
    spare = room - sum(widths)  # hand what rounding left to the columns still wrapping
    for index, width in enumerate(widths):
        if spare and width < natural[index]:
            widths[index] += 1
            spare -= 1
    return widths


def _table(headers: list[str], rows: list[tuple[str, list[str]]], widths: list[int],
           step_width: int) -> list[str]:
    """Header, dashes, then each row with its cells wrapped to `widths`."""

    def line(number: str, cells: list[list[str]]) -> list[str]:
        height = max(len(cell) for cell in cells)
        out = []
        for k in range(height):
            parts = [(number if k == 0 else "").rjust(step_width)]
            parts += [(cell[k] if k < len(cell) else "").ljust(w) for cell, w in zip(cells, widths,
                                                                                      strict=True)]
            out.append(SEPARATOR.join(parts).rstrip())
        return out

    header = line("step", [wrap(name, w) for name, w in zip(headers, widths, strict=True)])
    lines = [*header, "-" * (step_width + sum(widths) + len(SEPARATOR) * len(widths))]
    for number, cells in rows:
        lines += line(number, [wrap(text, w) for text, w in zip(cells, widths, strict=True)])
    return lines


def _swimlane(steps: Sequence[Step], thread_names: Sequence[str], locations: list[str],
              at: str, step_width: int) -> list[str] | None:
    """One column per thread, then the location; None if the lanes would be too narrow."""
    lanes = len(thread_names)
    natural = [len(name) for name in thread_names]
    for step in steps:
        natural[step.thread] = max(natural[step.thread], len(step.cell))
    at_natural = max([len(at), *map(len, locations)])
    room = WIDTH - step_width - len(SEPARATOR) * (lanes + 1)
    widths = _fit([*natural, at_natural], [LANE_MIN] * lanes + [LOCATION_MAX], room)
    if widths is None:
        return None
    rows = []
    for step, location in zip(steps, locations, strict=True):
        cells = [""] * lanes
        cells[step.thread] = step.cell
        rows.append((str(step.number), [*cells, location]))
    return _table([*thread_names, at], rows, widths, step_width)


def _listing(steps: Sequence[Step], thread_names: Sequence[str], step_width: int) -> list[str]:
    """One row per step: thread, operation, location (any number of threads fits)."""
    who = [thread_names[step.thread] for step in steps]
    natural = [max([6, *map(len, who)]), max([9, *(len(s.cell) for s in steps)]),
               max([2, *(len(s.location) for s in steps)])]
    widths = _fit(natural, [16, 24, LOCATION_MAX], WIDTH - step_width - len(SEPARATOR) * 3)
    assert widths is not None  # 16 + 24 + 30 always fit
    rows = [(str(s.number), [name, s.cell, s.location]) for s, name in zip(steps, who,
                                                                           strict=True)]
    return _table(["thread", "operation", "at"], rows, widths, step_width)


def render(steps: Sequence[Step], thread_names: Sequence[str]) -> str:
    """The steps in at most WIDTH columns, then the legend.

    A swimlane if the lanes get at least LANE_MIN columns, with only line numbers
    (the file named below it) if every step is in one file and that wraps fewer
    cells; else a list.
    """
    step_width = max(4, len(str(steps[-1].number))) if steps else 4
    locations = [step.location for step in steps]
    lines = _swimlane(steps, thread_names, locations, "at", step_width)
    files = {location.rsplit(":", 1)[0] for location in locations if location}
    if len(files) == 1:
        numbers = [location.rsplit(":", 1)[-1] for location in locations]
        shorter = _swimlane(steps, thread_names, numbers, "line", step_width)
        if shorter is not None and (lines is None or len(shorter) + 1 < len(lines)):
            lines = [*shorter, f"line = line number in {files.pop()}"]
    if lines is None:
        lines = _listing(steps, thread_names, step_width)
    lines.append(LEGEND)
    return "\n".join(lines)
