"""`random`: at each decision, a uniformly random enabled thread (seeded)."""

from __future__ import annotations

import random
from typing import Any

from .base import Strategy


class RandomWalk(Strategy):
    name = "random"

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed).random

    def choose(self, enabled: list[Any], current: Any) -> Any:
        return enabled[int(self._random() * len(enabled))]
