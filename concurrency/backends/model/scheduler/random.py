"""`random`: at each decision, a uniformly random enabled thread (seeded)."""

from __future__ import annotations

import random
from typing import Any

from .base import Strategy


class RandomWalk(Strategy):
    name = "random"

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._below = self._rng.randrange

    def choose(self, enabled: list[Any], current: Any) -> Any:
        return enabled[self._below(len(enabled))]
