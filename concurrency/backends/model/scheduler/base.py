"""What the runtime asks of a strategy."""

from __future__ import annotations

from typing import Any


class Strategy:
    """Picks the next thread at each decision (a point with more than one enabled thread)."""

    name = "strategy"

    def start_execution(self) -> None:
        """Called before each execution."""

    def choose(self, enabled: list[Any], current: Any) -> Any:
        """Return one of `enabled` (ordered by thread id); `current` is the thread at the point."""
        raise NotImplementedError

    def finish_execution(self, decisions: int) -> bool:
        """Called after each execution with its number of decisions; False ends the search."""
        return True

    @property
    def exhausted(self) -> bool:
        """True when the strategy has covered every schedule (only DFS can)."""
        return False
