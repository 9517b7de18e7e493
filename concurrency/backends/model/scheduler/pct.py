"""`pct`: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).

Each thread gets a random distinct priority above `depth`; the highest-priority
enabled thread runs. At `depth - 1` change points, drawn uniformly over the k
decisions learned from the first run, the running thread drops to priority
i (below every initial one). A bug of depth d is found with probability at
least 1/(n * k^(d-1)) per execution. Only decisions (points with more than one
enabled thread) count as steps.
"""

from __future__ import annotations

import random
from typing import Any

from .base import Strategy


class PCT(Strategy):
    name = "pct"

    def __init__(self, seed: int, depth: int = 3) -> None:
        if depth < 1:
            raise ValueError(f"pct_depth must be >= 1, got {depth}")
        self._rng = random.Random(seed)
        self.depth = depth
        self._k = 0  # decisions per execution, learned from the runs so far
        self._priorities: dict[int, float] = {}
        self._change_points: dict[int, int] = {}
        self._step = 0

    def start_execution(self) -> None:
        self._priorities = {}
        self._step = 0
        # Each of the depth-1 change points is drawn independently from [1, k]; the i-th
        # lowers the running thread to priority i (1 <= i < depth), below every initial one.
        points = [self._rng.randint(1, self._k) for _ in range(self.depth - 1)] if self._k else []
        self._change_points = {step: i + 1 for i, step in enumerate(points)}

    def _priority(self, thread: Any) -> float:
        priority = self._priorities.get(thread.id)
        if priority is None:
            priority = self.depth + self._rng.random()
            self._priorities[thread.id] = priority
        return priority

    def choose(self, enabled: list[Any], current: Any) -> Any:
        self._step += 1
        best = max(enabled, key=self._priority)
        lowered = self._change_points.get(self._step)
        if lowered is not None:
            self._priorities[best.id] = lowered
            best = max(enabled, key=self._priority)
        return best

    def finish_execution(self, decisions: int) -> bool:
        self._k = max(self._k, decisions)
        return True
