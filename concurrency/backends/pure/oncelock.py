"""`OnceLock` in pure Python (one class: there is nothing more to check).

The value is written and read under the cell's raw lock, so a thread that
sees it also sees everything its initializer did. The lock is never held while
an initializer runs: callers that find one running park on a `WaitQueue`.

Async-exception safety is best-effort in pure Python (see `_common`): an
initializer cut short by an exception leaves the cell empty and lets the next
waiter take its turn; an interrupted wait leaves the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import sync
from ._common import WaitQueue, allocate_lock, get_ident, next_name

__all__ = ["OnceLock"]

_UNSET: Any = object()


class OnceLock(sync.OnceLock[Any]):
    """A write-once cell; concurrent `get_or_init` callers wait for the one initializer."""

    __slots__ = ("_initializer", "_lock", "_queue", "_value", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self._value = _UNSET
        self._initializer: int | None = None  # the thread running `get_or_init`'s fn
        self._lock = allocate_lock()
        self._queue = WaitQueue()  # callers waiting for that initializer
        self.name = name or next_name("OnceLock")

    def _check_not_reentrant(self, what: str) -> None:
        if self._initializer == get_ident():
            raise RuntimeError(
                f"{self.name}.{what}() called from inside its own initializer: it would deadlock"
            )

    def get(self) -> Any:
        with self._lock:
            value = self._value
        return None if value is _UNSET else value

    def set(self, value: Any) -> bool:
        with self._lock:
            while self._initializer is not None and self._value is _UNSET:
                self._check_not_reentrant("set")
                self._queue.wait(self._lock)
            if self._value is not _UNSET:
                return False
            self._value = value
            self._queue.notify_all()
            return True

    def get_or_init(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            while True:
                if self._value is not _UNSET:
                    return self._value
                if self._initializer is None:
                    self._initializer = get_ident()
                    break
                self._check_not_reentrant("get_or_init")
                self._queue.wait(self._lock)
        value = _UNSET
        try:
            value = fn()
        finally:
            with self._lock:
                self._initializer = None
                if value is _UNSET:  # fn raised: the next waiter takes its turn
                    self._queue.notify(1)
                else:
                    self._value = value
                    self._queue.notify_all()
        return value
