"""`AtomicInt`, `AtomicBool` and `AtomicRef` in pure Python (nothing more to check).

Every operation, `load()` included, runs under the cell's raw lock, which
makes them sequentially consistent with or without the GIL.
"""

from __future__ import annotations

from typing import Any

from ...sync import atomic
from ._common import allocate_lock, next_name

__all__ = ["AtomicBool", "AtomicInt", "AtomicRef"]


class _LockedCell:
    """Shared body of the atomics: a value behind one raw lock."""

    __slots__ = ()
    _value: Any
    _lock: Any
    name: str

    def load(self) -> Any:
        with self._lock:
            return self._value

    def store(self, value: Any) -> None:
        with self._lock:
            self._value = value

    def swap(self, value: Any) -> Any:
        with self._lock:
            old = self._value
            self._value = value
            return old

    def compare_exchange(self, expected: Any, new: Any) -> tuple[bool, Any]:
        with self._lock:
            current = self._value
            if current == expected:
                self._value = new
                return True, current
            return False, current

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}={self.load()!r}>"


class AtomicInt(_LockedCell, atomic.AtomicInt):
    __slots__ = ("_lock", "_value", "name")

    def __init__(self, value: int = 0, *, name: str | None = None) -> None:
        self._value = value
        self._lock = allocate_lock()
        self.name = name or next_name("AtomicInt")

    def fetch_add(self, delta: int) -> int:
        with self._lock:
            old = self._value
            self._value = old + delta
            return old

    def fetch_sub(self, delta: int) -> int:
        with self._lock:
            old = self._value
            self._value = old - delta
            return old


class AtomicBool(_LockedCell, atomic.AtomicBool):
    __slots__ = ("_lock", "_value", "name")

    def __init__(self, value: bool = False, *, name: str | None = None) -> None:
        self._value = value
        self._lock = allocate_lock()
        self.name = name or next_name("AtomicBool")


class AtomicRef(_LockedCell, atomic.AtomicRef[Any]):
    __slots__ = ("_lock", "_value", "name")

    def __init__(self, obj: Any = None, *, name: str | None = None) -> None:
        self._value = obj
        self._lock = allocate_lock()
        self.name = name or next_name("AtomicRef")

    def compare_exchange(self, expected: Any, new: Any) -> tuple[bool, Any]:
        with self._lock:
            current = self._value
            if current is expected:
                self._value = new
                return True, current
            return False, current
