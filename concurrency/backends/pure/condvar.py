"""`Condvar` in pure Python (one class: the checks live in the guards it is used with).

A Condvar binds to the first Mutex it is used with and refuses any other. A
waiter queues itself under the Condvar's own raw lock *before* releasing the
mutex (`guard._park()`), so a notify sent by a thread that took the mutex
after it cannot be missed. The mutex is always taken back (`guard._unpark()`)
before `wait*` returns or raises.

Async-exception safety is best-effort in pure Python (see `_common`): an
interrupted wait leaves the queue and passes on a notification it had already
received, then takes the mutex back before raising, even when the re-acquire
itself is interrupted (`MutexGuard._unpark`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import sync
from ..._errors import check_timeout
from ._common import WaitQueue, allocate_lock, deadline_after, next_name, park, remaining

__all__ = ["Condvar"]


class Condvar(sync.Condvar):
    """Condition variable for real threads; it binds to the first Mutex it is used with."""

    __slots__ = ("_lock", "_mutex", "_queue", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self._lock = allocate_lock()
        self._queue = WaitQueue()
        self._mutex: Any = None
        self.name = name or next_name("Condvar")

    def _bind(self, guard: Any) -> None:
        """Bind to the guard's mutex on first use (atomically); refuse any other later."""
        if not isinstance(guard, sync.MutexGuard):
            raise TypeError(f"{self.name}.wait needs a MutexGuard, got {type(guard).__name__}")
        mutex = guard._mutex_for_wait(self)  # type: ignore[attr-defined]  # backend guards
        with self._lock:
            if self._mutex is None:
                self._mutex = mutex
            bound = self._mutex
        if bound is not mutex:
            raise RuntimeError(
                f"{self.name} was used with {bound.name} and now with {mutex.name}; "
                "a Condvar must always be used with the same Mutex"
            )

    def _wait(self, guard: Any, timeout: float | None) -> bool:
        """Park until notified or `timeout`; True if notified. Returns holding the mutex."""
        self._bind(guard)
        with self._lock:
            waiter = self._queue.add()
        guard._park()
        notified = False
        try:
            notified = park(waiter, timeout)
        except BaseException:
            with self._lock:
                self._queue.leave(waiter)
            raise
        else:
            if not notified:
                with self._lock:
                    notified = not self._queue.withdraw(waiter)  # chosen as we timed out
        finally:
            guard._unpark()
        return notified

    def wait(self, guard: Any) -> None:
        self._wait(guard, None)

    def wait_while(self, guard: Any, predicate: Callable[[Any], bool]) -> None:
        while predicate(guard.value):
            self._wait(guard, None)

    def wait_timeout(self, guard: Any, seconds: float) -> bool:
        timeout = check_timeout(seconds, "Condvar.wait_timeout", allow_none=False)
        return not self._wait(guard, timeout)

    def wait_timeout_while(
        self, guard: Any, seconds: float, predicate: Callable[[Any], bool]
    ) -> bool:
        timeout = check_timeout(seconds, "Condvar.wait_timeout_while", allow_none=False)
        deadline = deadline_after(timeout)
        while predicate(guard.value):
            left = remaining(deadline)
            if left == 0.0:
                return True
            self._wait(guard, left)
        return False

    def notify_one(self) -> None:
        with self._lock:
            self._queue.notify(1)

    def notify_all(self) -> None:
        with self._lock:
            self._queue.notify_all()
