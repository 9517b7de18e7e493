"""`Barrier` in pure Python (one class: there is nothing more to check).

Each round is its own object, so a waiter of a finished round can tell that
it passed even when the next round has already started. A wait that times
out or is interrupted breaks the barrier: the others must not pass one short.

Async-exception safety is best-effort in pure Python (see `_common`).
"""

from __future__ import annotations

from ... import sync
from ..._errors import BrokenBarrierError, check_timeout
from ._common import WaitQueue, allocate_lock, deadline_after, next_name, remaining

__all__ = ["Barrier"]


class _Round:
    __slots__ = ("arrived", "broken", "done")

    def __init__(self) -> None:
        self.arrived = 0
        self.done = False
        self.broken = False


class Barrier(sync.Barrier):
    """A reusable barrier; each round's last arrival is its leader."""

    __slots__ = ("_broken", "_lock", "_queue", "_round", "name", "parties")

    def __init__(self, parties: int, *, name: str | None = None) -> None:
        if isinstance(parties, bool) or not isinstance(parties, int) or parties < 1:
            raise ValueError(f"Barrier: parties must be an int >= 1, got {parties!r}")
        self.parties = parties
        self.name = name or next_name("Barrier")
        self._lock = allocate_lock()
        self._queue = WaitQueue()
        self._round = _Round()
        self._broken = False

    def wait(self, timeout: float | None = None) -> sync.BarrierWaitResult:
        deadline = deadline_after(check_timeout(timeout, "Barrier.wait"))
        with self._lock:
            if self._broken:
                raise BrokenBarrierError(f"{self.name} is broken")
            current = self._round
            current.arrived += 1
            if current.arrived == self.parties:
                current.done = True
                self._round = _Round()
                self._queue.notify_all()
                return sync.BarrierWaitResult(is_leader=True)
            try:
                while not (current.done or current.broken):
                    if not self._queue.wait(self._lock, remaining(deadline)) and not (
                        current.done or current.broken
                    ):
                        self._break(current)  # timed out
            except BaseException:  # interrupted: the others must not pass one short
                if not current.done:
                    self._break(current)
                raise
            if current.broken:
                raise BrokenBarrierError(f"{self.name} was broken while waiting")
            return sync.BarrierWaitResult(is_leader=False)

    def _break(self, current: _Round) -> None:
        current.broken = True
        self._broken = True
        if current is self._round:  # its waiters are leaving: n_waiting drops to 0
            self._round = _Round()
        self._queue.notify_all()

    def abort(self) -> None:
        with self._lock:
            self._break(self._round)

    def reset(self) -> None:
        with self._lock:
            if self._round.arrived:
                self._round.broken = True
                self._queue.notify_all()
            self._round = _Round()
            self._broken = False

    @property
    def broken(self) -> bool:
        with self._lock:
            return self._broken

    @property
    def n_waiting(self) -> int:
        with self._lock:
            return self._round.arrived
