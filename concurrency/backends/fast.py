"""The `fast` backend: the production default, with the lowest overhead per operation.

Same semantics as `threading` for correct programs, poisoning included. To keep
the uncontended paths short it skips the checks that cost time on them:

- re-locking a `Mutex` (or re-acquiring an `RwLock`) the thread already holds
  deadlocks instead of raising;
- a guard released from a thread other than the one that acquired it is
  released, not refused.

Still checked here, because they cost nothing on the hot path: using a guard
after it was released, releasing a guard twice, a `Condvar` used with two
different mutexes, and every argument (timeouts, bounds, permits).

`Mutex` and `MutexGuard` come from the C accelerator `_fastmutex` when it was
compiled at install time (it makes `with m.lock():` about as cheap as `with
threading.Lock():`); otherwise they are the pure-Python `PyMutex` and
`PyMutexGuard`, which have the same behaviour. `ACCELERATED` says which.
Set `CONCURRENCY_PURE_PYTHON=1` before importing `concurrency` to force the
pure-Python classes (0 or unset: use the accelerator when it is there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, NoReturn

from .. import sync
from .._errors import ConfigError, check_timeout, raise_poisoned
from ._realthread import (
    AtomicBool,
    AtomicInt,
    AtomicRef,
    Barrier,
    Condvar,
    JoinHandle,
    OnceLock,
    Receiver,
    Semaphore,
    SemaphoreGuard,
    Sender,
    WaitQueue,
    allocate_lock,
    channel,
    current,
    deadline_after,
    next_name,
    remaining,
    sleep,
    spawn,
    yield_now,
)

NAME = "fast"


def released(kind: str) -> NoReturn:
    raise RuntimeError(f"this {kind} was already released; it cannot be used any more")


def _poisoned_release(mutex: Any) -> NoReturn:
    """Give the lock back and raise: a poisoned Mutex never hands out its value."""
    mutex._release()
    raise_poisoned(mutex)


# --------------------------------------------------------------------------- Mutex


class PyMutexGuard(sync.MutexGuard[Any]):
    """The pure-Python guard; also the base of the checked backend's guard."""

    __slots__ = ("_mutex",)
    _mutex: Any

    @property
    def value(self) -> Any:
        mutex = self._mutex
        if mutex is None:
            released("MutexGuard")
        return mutex._value

    @value.setter
    def value(self, new: Any) -> None:
        mutex = self._mutex
        if mutex is None:
            released("MutexGuard")
        mutex._value = new

    def unlock(self) -> None:
        mutex = self._mutex
        if mutex is None:
            released("MutexGuard")
        self._mutex = None
        mutex._release()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        mutex = self._mutex
        if mutex is None:
            return
        self._mutex = None
        if exc_type is not None and mutex._poison is None:
            mutex._poison = exc
        mutex._release()

    # Condvar support: release and re-take the lock while the guard stays logically held.
    def _mutex_for_wait(self, condvar: Any) -> Any:
        mutex = self._mutex
        if mutex is None:
            released("MutexGuard")
        return mutex

    def _park(self) -> None:
        self._mutex._release()

    def _unpark(self) -> None:
        mutex = self._mutex
        mutex._acquire()
        if mutex._poison is not None:
            raise_poisoned(mutex)


_new_mutex_guard = PyMutexGuard.__new__


class PyMutex(sync.Mutex[Any]):
    """The pure-Python Mutex; also the base of the checked backend's Mutex."""

    __slots__ = ("_acquire", "_lock", "_poison", "_release", "_value", "name")

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        lock = allocate_lock()
        self._lock = lock
        self._acquire = lock.acquire
        self._release = lock.release
        self._value = value
        self._poison: BaseException | None = None
        self.name = name or next_name("Mutex")

    def lock(self) -> PyMutexGuard:
        self._acquire()
        if self._poison is not None:
            _poisoned_release(self)
        guard = _new_mutex_guard(PyMutexGuard)
        guard._mutex = self
        return guard

    def try_lock(self) -> PyMutexGuard | None:
        if not self._acquire(False):
            return None
        if self._poison is not None:
            _poisoned_release(self)
        guard = _new_mutex_guard(PyMutexGuard)
        guard._mutex = self
        return guard

    def try_lock_for(self, seconds: float) -> PyMutexGuard | None:
        timeout = check_timeout(seconds, "Mutex.try_lock_for", allow_none=False)
        assert timeout is not None  # allow_none=False
        if not self._acquire(True, timeout):
            return None
        if self._poison is not None:
            _poisoned_release(self)
        guard = _new_mutex_guard(PyMutexGuard)
        guard._mutex = self
        return guard

    def is_locked(self) -> bool:
        return bool(self._lock.locked())

    def is_poisoned(self) -> bool:
        return self._poison is not None

    def clear_poison(self) -> None:
        self._poison = None

    def __repr__(self) -> str:
        state = "locked" if self.is_locked() else "unlocked"
        poisoned = ", poisoned" if self._poison is not None else ""
        return f"<Mutex {self.name} {state}{poisoned}>"


def _pure_python_forced(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `CONCURRENCY_PURE_PYTHON=1` asks for the pure-Python Mutex."""
    raw = environ.get("CONCURRENCY_PURE_PYTHON", "").strip()
    if raw not in ("", "0", "1"):
        raise ConfigError(
            f"CONCURRENCY_PURE_PYTHON={raw!r} is not valid; use 1 to force the "
            "pure-Python Mutex, or 0 (or leave it unset) to use the C accelerator"
        )
    return raw == "1"


def _accelerated_mutex() -> tuple[type[Any], type[Any]] | None:
    """The C-accelerated (Mutex, MutexGuard) classes, or None to use the pure ones.

    The C types from `_fastmutex` come first in each class's bases, so their
    methods shadow the facade's and no Python frame runs on `with m.lock():`.
    """
    if _pure_python_forced():
        return None
    try:
        from . import _fastmutex  # type: ignore[attr-defined]
    except ImportError:  # not compiled for this interpreter: stay pure
        return None

    class MutexGuard(_fastmutex.MutexGuard, sync.MutexGuard[Any]):
        __slots__ = ()
        __qualname__ = "MutexGuard"

    class Mutex(_fastmutex.Mutex, sync.Mutex[Any]):
        __slots__ = ()
        __qualname__ = "Mutex"
        _guard_class = MutexGuard

    return Mutex, MutexGuard


_ACCELERATED = _accelerated_mutex()
ACCELERATED: bool = _ACCELERATED is not None
"""True when `Mutex` and `MutexGuard` are the C-accelerated classes."""

Mutex: type[Any]
MutexGuard: type[Any]
Mutex, MutexGuard = _ACCELERATED if _ACCELERATED is not None else (PyMutex, PyMutexGuard)


# --------------------------------------------------------------------------- RwLock


class ReadGuard(sync.ReadGuard[Any]):
    __slots__ = ("_rw",)

    def __init__(self, rw: RwLock) -> None:
        self._rw: RwLock | None = rw

    @property
    def value(self) -> Any:
        rw = self._rw
        if rw is None:
            released("ReadGuard")
        return rw._value

    def _take(self) -> RwLock:
        rw = self._rw
        if rw is None:
            released("ReadGuard")
        self._rw = None
        return rw

    def unlock(self) -> None:
        self._take()._release_read()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        rw = self._rw
        if rw is not None:  # a reader never poisons
            self._rw = None
            rw._release_read()


class WriteGuard(sync.WriteGuard[Any]):
    __slots__ = ("_rw",)

    def __init__(self, rw: RwLock) -> None:
        self._rw: RwLock | None = rw

    @property
    def value(self) -> Any:
        rw = self._rw
        if rw is None:
            released("WriteGuard")
        return rw._value

    @value.setter
    def value(self, new: Any) -> None:
        rw = self._rw
        if rw is None:
            released("WriteGuard")
        rw._value = new

    def _take(self) -> RwLock:
        rw = self._rw
        if rw is None:
            released("WriteGuard")
        self._rw = None
        return rw

    def unlock(self) -> None:
        self._take()._release_write()

    def downgrade(self) -> ReadGuard:
        rw = self._take()
        rw._downgrade()
        return rw._read_guard(rw)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        rw = self._rw
        if rw is not None:
            self._rw = None
            if exc_type is not None and rw._poison is None:
                rw._poison = exc
            rw._release_write()


class UpgradableReadGuard(sync.UpgradableReadGuard[Any]):
    __slots__ = ("_rw",)

    def __init__(self, rw: RwLock) -> None:
        self._rw: RwLock | None = rw

    @property
    def value(self) -> Any:
        rw = self._rw
        if rw is None:
            released("UpgradableReadGuard")
        return rw._value

    def _take(self) -> RwLock:
        rw = self._rw
        if rw is None:
            released("UpgradableReadGuard")
        self._rw = None
        return rw

    def unlock(self) -> None:
        self._take()._release_upgradable()

    def upgrade(self) -> WriteGuard:
        rw = self._take()
        rw._upgrade()
        return rw._write_guard(rw)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        rw = self._rw
        if rw is not None:
            self._rw = None
            if exc_type is not None and rw._poison is None:
                rw._poison = exc
            rw._release_upgradable()


class RwLock(sync.RwLock[Any]):
    """Phase-fair readers-writer lock: once a writer waits, new readers queue behind
    it, and the readers that queued get their turn when that writer leaves."""

    __slots__ = (
        "_poison",
        "_read_q",
        "_readers",
        "_readers_pass",
        "_state",
        "_upgradable",
        "_upgradable_q",
        "_upgrade_q",
        "_upgrading",
        "_value",
        "_write_q",
        "_writer",
        "_writers_waiting",
        "name",
    )
    _read_guard = ReadGuard
    _write_guard = WriteGuard
    _upgradable_guard = UpgradableReadGuard

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        self._value = value
        self._poison: BaseException | None = None
        self.name = name or next_name("RwLock")
        self._state = allocate_lock()
        self._readers = 0  # plain readers inside
        self._writer = False
        self._upgradable = False  # an upgradable reader is inside
        self._upgrading = False  # ...and is waiting for readers to leave
        self._writers_waiting = 0
        self._readers_pass = 0  # queued readers admitted ahead of waiting writers
        self._read_q = WaitQueue()
        self._write_q = WaitQueue()
        self._upgradable_q = WaitQueue()
        self._upgrade_q = WaitQueue()

    # -- admission -----------------------------------------------------------------

    def _acquire_read(self, deadline: float | None, blocking: bool) -> bool:
        with self._state:
            if self._poison is not None:
                raise_poisoned(self)
            if not (self._writer or self._writers_waiting or self._upgrading):
                self._readers += 1
                return True
            if not blocking:
                return False
            while True:
                self._read_q.wait(self._state, remaining(deadline))
                if self._poison is not None:
                    raise_poisoned(self)
                if not (self._writer or self._upgrading) and (
                    not self._writers_waiting or self._readers_pass
                ):
                    if self._readers_pass:
                        self._readers_pass -= 1
                    self._readers += 1
                    return True
                if deadline is not None and remaining(deadline) == 0.0:
                    return False

    def _acquire_write(self, deadline: float | None, blocking: bool) -> bool:
        with self._state:
            if self._poison is not None:
                raise_poisoned(self)
            if not (self._writer or self._readers or self._upgradable):
                self._writer = True
                return True
            if not blocking:
                return False
            self._writers_waiting += 1
            acquired = False
            try:
                while True:
                    self._write_q.wait(self._state, remaining(deadline))
                    if self._poison is not None:
                        raise_poisoned(self)
                    if not (self._writer or self._readers or self._upgradable):
                        self._writer = acquired = True
                        return True
                    if deadline is not None and remaining(deadline) == 0.0:
                        return False
            finally:
                self._writers_waiting -= 1
                if not acquired and not self._writers_waiting:
                    self._read_q.notify_all()  # readers held back for us may go
                    self._upgradable_q.notify(1)

    def _acquire_upgradable(self, deadline: float | None, blocking: bool) -> bool:
        with self._state:
            while True:
                if self._poison is not None:
                    raise_poisoned(self)
                if not (self._writer or self._upgradable or self._writers_waiting):
                    self._upgradable = True
                    return True
                if not blocking or (deadline is not None and remaining(deadline) == 0.0):
                    return False
                self._upgradable_q.wait(self._state, remaining(deadline))

    # -- release -------------------------------------------------------------------

    def _release_read(self) -> None:
        with self._state:
            self._readers -= 1
            if not self._readers:
                if self._upgrading:
                    self._upgrade_q.notify(1)
                elif self._write_q:
                    self._write_q.notify(1)

    def _admit_after_writer(self) -> None:
        """A writer left: queued readers go first, else the next writer."""
        if self._read_q:
            self._readers_pass = len(self._read_q)
            self._read_q.notify_all()
        elif self._write_q:
            self._write_q.notify(1)
        if self._upgradable_q:
            self._upgradable_q.notify(1)

    def _wake_all_poisoned(self) -> None:
        """The lock was just poisoned: every waiter must wake and raise, not only the next."""
        self._read_q.notify_all()
        self._write_q.notify_all()
        self._upgradable_q.notify_all()

    def _release_write(self) -> None:
        with self._state:
            self._writer = False
            if self._poison is not None:
                self._wake_all_poisoned()
            else:
                self._admit_after_writer()

    def _release_upgradable(self) -> None:
        with self._state:
            self._upgradable = False
            if self._poison is not None:
                self._wake_all_poisoned()
                return
            if self._upgradable_q:
                self._upgradable_q.notify(1)
            if not self._readers and self._write_q:
                self._write_q.notify(1)

    def _upgrade(self) -> None:
        with self._state:
            self._upgrading = True
            try:
                while self._readers:
                    self._upgrade_q.wait(self._state)
            finally:
                self._upgrading = False
            self._upgradable = False
            self._writer = True

    def _downgrade(self) -> None:
        with self._state:
            self._writer = False
            self._readers += 1
            self._admit_after_writer()

    # -- public API ----------------------------------------------------------------

    def read(self) -> ReadGuard:
        self._acquire_read(None, True)
        return self._read_guard(self)

    def write(self) -> WriteGuard:
        self._acquire_write(None, True)
        return self._write_guard(self)

    def upgradable_read(self) -> UpgradableReadGuard:
        self._acquire_upgradable(None, True)
        return self._upgradable_guard(self)

    def try_read(self) -> ReadGuard | None:
        return self._read_guard(self) if self._acquire_read(None, False) else None

    def try_write(self) -> WriteGuard | None:
        return self._write_guard(self) if self._acquire_write(None, False) else None

    def try_upgradable_read(self) -> UpgradableReadGuard | None:
        return self._upgradable_guard(self) if self._acquire_upgradable(None, False) else None

    def try_read_for(self, seconds: float) -> ReadGuard | None:
        deadline = deadline_after(check_timeout(seconds, "RwLock.try_read_for", allow_none=False))
        return self._read_guard(self) if self._acquire_read(deadline, True) else None

    def try_write_for(self, seconds: float) -> WriteGuard | None:
        deadline = deadline_after(check_timeout(seconds, "RwLock.try_write_for", allow_none=False))
        return self._write_guard(self) if self._acquire_write(deadline, True) else None

    def is_poisoned(self) -> bool:
        return self._poison is not None

    def clear_poison(self) -> None:
        self._poison = None

    def __repr__(self) -> str:
        poisoned = ", poisoned" if self._poison is not None else ""
        return f"<RwLock {self.name} readers={self._readers} writer={self._writer}{poisoned}>"


__all__ = [
    "NAME",
    "AtomicBool",
    "AtomicInt",
    "AtomicRef",
    "Barrier",
    "Condvar",
    "JoinHandle",
    "Mutex",
    "MutexGuard",
    "OnceLock",
    "ReadGuard",
    "Receiver",
    "RwLock",
    "Semaphore",
    "SemaphoreGuard",
    "Sender",
    "UpgradableReadGuard",
    "WriteGuard",
    "channel",
    "current",
    "sleep",
    "spawn",
    "yield_now",
]
