"""The native core: the real-thread primitives' state machines, in C.

`_core` (compiled from the `.c` files beside this one at install time) holds
the types; this module binds them to the facade. `bind(checked=...)` returns
the classes a real-thread backend exports: each is a subclass of the C type
and of the facade class, with the C type first, so `isinstance` against the
facade holds while every method a hot path calls is the C one.

`CORE` is the compiled module, or None when it is not there (no compiler at
install time) or `CONCURRENCY_PURE_PYTHON=1` asks for the pure-Python
fallback in `concurrency.backends.pure`. Why C: see `core.h`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType, SimpleNamespace
from typing import Any

from ... import sync
from ..._errors import ConfigError
from ...sync import atomic


def pure_python_forced(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `CONCURRENCY_PURE_PYTHON=1` asks for the pure-Python classes (0 or unset: no)."""
    raw = environ.get("CONCURRENCY_PURE_PYTHON", "").strip()
    if raw not in ("", "0", "1"):
        raise ConfigError(
            f"CONCURRENCY_PURE_PYTHON={raw!r} is not valid; use 1 to force the "
            "pure-Python primitives, or 0 (or leave it unset) to use the native core"
        )
    return raw == "1"


def _load_core() -> ModuleType | None:
    if pure_python_forced():
        return None
    try:
        from . import _core  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _core


CORE: ModuleType | None = _load_core()


def _named(cls: type[Any], name: str) -> type[Any]:
    cls.__qualname__ = cls.__name__ = name
    return cls


def bind(*, checked: bool) -> SimpleNamespace:
    """The native classes of one backend: `checked` turns on the `threading` backend's checks."""
    core: Any = CORE  # the C types, subclassed below
    if core is None:
        raise RuntimeError("the native core is not available (see concurrency.backends.native.CORE)")

    class MutexGuard(core.MutexGuard, sync.MutexGuard[Any]):
        __slots__ = ()

    class Mutex(core.Mutex, sync.Mutex[Any]):
        __slots__ = ()
        _guard_class = MutexGuard
        _checked_ = checked

    class Condvar(core.Condvar, sync.Condvar):
        __slots__ = ()

    class ReadGuard(core.ReadGuard, sync.ReadGuard[Any]):
        __slots__ = ()

    class WriteGuard(core.WriteGuard, sync.WriteGuard[Any]):
        __slots__ = ()

    class UpgradableReadGuard(core.UpgradableReadGuard, sync.UpgradableReadGuard[Any]):
        __slots__ = ()

    class RwLock(core.RwLock, sync.RwLock[Any]):
        __slots__ = ()
        _read_guard = ReadGuard
        _write_guard = WriteGuard
        _upgradable_guard = UpgradableReadGuard
        _checked_ = checked

    class SemaphoreGuard(core.SemaphoreGuard, sync.SemaphoreGuard):
        __slots__ = ()

    class Semaphore(core.Semaphore, sync.Semaphore):
        __slots__ = ()
        _guard_class = SemaphoreGuard
        _checked_ = checked

    class Barrier(core.Barrier, sync.Barrier):
        __slots__ = ()
        _result_class = sync.BarrierWaitResult

    class OnceLock(core.OnceLock, sync.OnceLock[Any]):
        __slots__ = ()

    class AtomicInt(core.AtomicInt, atomic.AtomicInt):
        __slots__ = ()

    class AtomicBool(core.AtomicBool, atomic.AtomicBool):
        __slots__ = ()

    class AtomicRef(core.AtomicRef, atomic.AtomicRef[Any]):
        __slots__ = ()

    class Sender(core.Sender, sync.Sender[Any]):
        __slots__ = ()

    class Receiver(core.Receiver, sync.Receiver[Any]):
        __slots__ = ()

    classes = {name: _named(cls, name) for name, cls in locals().items() if isinstance(cls, type)}
    return SimpleNamespace(**classes, channel=_channel_factory(core, Sender, Receiver))


def _channel_factory(core: ModuleType, sender: type[Any], receiver: type[Any]) -> Any:
    """`channel(bound, name)` handing out ends of this backend's classes."""
    make = core.channel

    def channel(bound: int | None, name: str | None) -> tuple[Any, Any]:
        ends: tuple[Any, Any] = make(bound, name, sender_class=sender, receiver_class=receiver)
        return ends

    return channel


__all__ = ["CORE", "bind", "pure_python_forced"]
