"""`dfs`: every distinct schedule exactly once, depth first.

The path is a stack of (option taken, options) per decision; each execution
replays the stack's prefix and takes the first option at new decisions, then
backtracks to the deepest decision with an untried option. Options list the
thread at the point first, so the first execution runs without preemption.
With `preemption_bound`, a decision that would exceed it offers only the
current thread.
"""

from __future__ import annotations

from typing import Any

from .base import Strategy


class NondeterminismError(RuntimeError):
    """The same schedule prefix led to a different set of enabled threads."""


class DepthFirst(Strategy):
    name = "dfs"

    def __init__(self, preemption_bound: int | None = None) -> None:
        if preemption_bound is not None and preemption_bound < 0:
            raise ValueError(f"preemption_bound must be >= 0, got {preemption_bound}")
        self.bound = preemption_bound
        self._path: list[list[int]] = []  # [index taken, number of options]
        self._depth = 0
        self._preemptions = 0
        self._done = False

    def start_execution(self) -> None:
        self._depth = 0
        self._preemptions = 0

    def _options(self, enabled: list[Any], current: Any) -> list[Any]:
        if current is None or current not in enabled:
            return enabled
        if self.bound is not None and self._preemptions >= self.bound:
            return [current]
        return [current, *(t for t in enabled if t is not current)]

    def choose(self, enabled: list[Any], current: Any) -> Any:
        options = self._options(enabled, current)
        if len(options) == 1:
            return options[0]
        depth = self._depth
        if depth < len(self._path):
            entry = self._path[depth]
            if entry[1] != len(options):
                raise NondeterminismError(
                    f"decision {depth + 1} offered {len(options)} threads, earlier {entry[1]}: "
                    "the test is not deterministic (it reads the clock, real randomness, or "
                    "state left over from an earlier execution)"
                )
        else:
            entry = [0, len(options)]
            self._path.append(entry)
        self._depth = depth + 1
        chosen = options[entry[0]]
        if current is not None and chosen is not current and current in enabled:
            self._preemptions += 1
        return chosen

    def finish_execution(self, decisions: int) -> bool:
        path = self._path
        del path[self._depth:]
        while path and path[-1][0] + 1 >= path[-1][1]:
            path.pop()
        if not path:
            self._done = True
            return False
        path[-1][0] += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self._done
