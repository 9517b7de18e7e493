"""Scheduling strategies, one per file: `random`, `pct`, `dfs`, and `replay`."""

from __future__ import annotations

from .base import Strategy
from .dfs import DepthFirst
from .pct import PCT
from .random import RandomWalk
from .replay import Replay, ReplayDivergence

__all__ = ["PCT", "DepthFirst", "RandomWalk", "Replay", "ReplayDivergence", "Strategy"]
