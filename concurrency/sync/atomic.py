"""Atomic cells. Every operation is sequentially consistent on every backend."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from .._facade import Facade

T = TypeVar("T")
V = TypeVar("V")

__all__ = ["AtomicBool", "AtomicInt", "AtomicRef"]


class _Atomic(Facade, Generic[V]):
    __slots__ = ()

    def load(self) -> V:
        raise NotImplementedError

    def store(self, value: V) -> None:
        raise NotImplementedError

    def swap(self, value: V) -> V:
        """Store `value` and return the previous one."""
        raise NotImplementedError

    def compare_exchange(self, expected: V, new: V) -> tuple[bool, V]:
        """If the current value is `expected`, store `new`.

        Returns `(True, expected)` on success and `(False, current)` otherwise.
        """
        raise NotImplementedError


class AtomicInt(_Atomic[int]):
    """An integer cell with `fetch_add`/`fetch_sub` (both return the old value)."""

    __slots__ = ()
    _facade_ = True

    def __init__(self, value: int = 0, *, name: str | None = None) -> None:
        raise NotImplementedError

    def fetch_add(self, delta: int) -> int:
        raise NotImplementedError

    def fetch_sub(self, delta: int) -> int:
        raise NotImplementedError


class AtomicBool(_Atomic[bool]):
    """A boolean cell."""

    __slots__ = ()
    _facade_ = True

    def __init__(self, value: bool = False, *, name: str | None = None) -> None:
        raise NotImplementedError


class AtomicRef(_Atomic[Any], Generic[T]):
    """A reference cell; `compare_exchange` compares by identity (`is`)."""

    __slots__ = ()
    _facade_ = True

    def __init__(self, obj: T | None = None, *, name: str | None = None) -> None:
        raise NotImplementedError
