"""The `threading` backend: the checked reference, built on the standard library.

It detects misuse instead of hanging or corrupting, and says what went wrong:

- re-locking a `Mutex`, or re-acquiring an `RwLock`, that the thread already
  holds (which would deadlock);
- releasing a guard from a thread other than the one that acquired it;
- using a guard after it was released, and releasing it twice;
- a `Condvar` used with two different mutexes.

Its `Mutex` and `MutexGuard` come from the C accelerator (`_fastmutex.CheckedMutex`)
whenever the `fast` backend's do (`ACCELERATED`), which keeps `with m.lock():`
close to the cost of `with threading.Lock():`; otherwise they are the
pure-Python `PyMutex` and `PyMutexGuard`, with the same checks and messages.

`readerwriterlock.RWLockFair` is the baseline our `RwLock` is measured against
(see `stress/bench_sync.py`); it has no upgradable reads, so it is not the base.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, NoReturn

from .. import sync
from .._errors import check_timeout, raise_poisoned
from . import fast
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
    channel,
    current,
    sleep,
    spawn,
    yield_now,
)

NAME = "threading"
get_ident = threading.get_ident


def _thread_name(ident: int | None) -> str:
    for candidate in threading.enumerate():
        if candidate.ident == ident:
            return candidate.name
    return f"thread {ident}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _refuse_not_owner(action: str, lock_name: str, owner: int) -> NoReturn:
    """Raise the error for `action` on a guard by a thread other than `owner`, its acquirer.

    Shared by the checked guards written in Python and the C `CheckedMutexGuard`.
    """
    raise RuntimeError(
        f"{action} a guard of {lock_name} from {threading.current_thread().name}, but "
        f"it was acquired by {_thread_name(owner)}: only the owner may release it"
    )


class _Owned:
    """Mixin for checked guards: remembers the acquiring thread and refuses others."""

    __slots__ = ()
    _owner: int

    def _check_owner(self, action: str, lock_name: str) -> None:
        if get_ident() != self._owner:
            _refuse_not_owner(action, lock_name, self._owner)


# --------------------------------------------------------------------------- Mutex
#
# `Mutex` and `MutexGuard` are the C `_fastmutex.CheckedMutex` and
# `CheckedMutexGuard` (with the facade classes) when the accelerator is in use
# (`fast.ACCELERATED`), else the pure-Python `PyMutex` and `PyMutexGuard` below,
# which make the same checks with the same messages.


def _refuse_relock(mutex: Any) -> NoReturn:
    """Raise the error for locking `mutex` again from the thread that holds it.

    Shared by `PyMutex` and the C `CheckedMutex`.
    """
    raise RuntimeError(
        f"{mutex.name} is already locked by this thread "
        f"({threading.current_thread().name}); locking it again would deadlock"
    )


class PyMutexGuard(_Owned, fast.PyMutexGuard):
    """The pure-Python checked guard: only its acquiring thread may release it."""

    __slots__ = ("_owner",)

    def __init__(self, mutex: PyMutex, owner: int) -> None:
        self._mutex = mutex
        self._owner = owner

    def unlock(self) -> None:
        mutex = self._mutex
        if mutex is None:
            fast.released("MutexGuard")
        self._check_owner("releasing", mutex.name)
        mutex._owner = None
        super().unlock()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The hot path of the checked backend: inline, only the error paths call out.
        mutex = self._mutex
        if mutex is None:
            return
        if get_ident() != self._owner:
            self._check_owner("releasing", mutex.name)
        self._mutex = None
        mutex._owner = None
        if exc_type is not None and mutex._poison is None:
            mutex._poison = exc
        mutex._release()

    def _mutex_for_wait(self, condvar: Any) -> Any:
        mutex = super()._mutex_for_wait(condvar)
        self._check_owner(f"waiting on {condvar.name} with", mutex.name)
        return mutex

    def _park(self) -> None:
        self._mutex._owner = None
        super()._park()

    def _unpark(self) -> None:
        mutex = self._mutex
        try:
            mutex._acquire()
        except BaseException:
            # Interrupted (a signal handler raised): the lock was not taken back, so
            # the guard lets go, and the `with` block's exit releases nothing. (A
            # handler raising in the instant after acquire() returned would leave the
            # lock taken and the guard let go; the C guard has no such window.)
            self._mutex = None
            raise
        mutex._owner = self._owner
        if mutex._poison is not None:
            raise_poisoned(mutex)


_new_guard = PyMutexGuard.__new__


class PyMutex(fast.PyMutex):
    """The pure-Python checked Mutex: records its holder to refuse re-locking."""

    __slots__ = ("_owner",)

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        super().__init__(value, name=name)
        self._owner: int | None = None

    def _guard(self, me: int) -> PyMutexGuard:
        """Record the owner and hand out a guard (refusing if poisoned)."""
        if self._poison is not None:
            self._release()
            raise_poisoned(self)
        self._owner = me
        guard = _new_guard(PyMutexGuard)
        guard._mutex = self
        guard._owner = me
        return guard

    def lock(self) -> PyMutexGuard:
        me = get_ident()
        if self._owner == me:
            _refuse_relock(self)
        self._acquire()
        if self._poison is not None:
            self._release()
            raise_poisoned(self)
        self._owner = me
        guard = _new_guard(PyMutexGuard)
        guard._mutex = self
        guard._owner = me
        return guard

    def try_lock(self) -> PyMutexGuard | None:
        me = get_ident()
        if not self._acquire(False):
            return None
        return self._guard(me)

    def try_lock_for(self, seconds: float) -> PyMutexGuard | None:
        me = get_ident()
        if self._owner == me:
            _refuse_relock(self)
        timeout = check_timeout(seconds, "Mutex.try_lock_for", allow_none=False)
        assert timeout is not None
        if not self._acquire(True, timeout):
            return None
        return self._guard(me)


def _accelerated_mutex() -> tuple[type[Any], type[Any]] | None:
    """The C-accelerated checked (Mutex, MutexGuard) classes, or None to use the pure ones.

    Used exactly when the `fast` backend uses its C classes (`fast.ACCELERATED`:
    the module was compiled and `CONCURRENCY_PURE_PYTHON` is not 1). The C
    types come first in the bases, so `with m.lock():` runs no Python frame.
    """
    if not fast.ACCELERATED:
        return None
    from . import _fastmutex  # type: ignore[attr-defined]

    class MutexGuard(_fastmutex.CheckedMutexGuard, sync.MutexGuard[Any]):
        __slots__ = ()
        __qualname__ = "MutexGuard"

    class Mutex(_fastmutex.CheckedMutex, sync.Mutex[Any]):
        __slots__ = ()
        __qualname__ = "Mutex"
        _guard_class = MutexGuard

    return Mutex, MutexGuard


_ACCELERATED = _accelerated_mutex()
ACCELERATED: bool = _ACCELERATED is not None
"""True when `Mutex` and `MutexGuard` are the C-accelerated checked classes."""

Mutex: type[Any]
MutexGuard: type[Any]
Mutex, MutexGuard = _ACCELERATED if _ACCELERATED is not None else (PyMutex, PyMutexGuard)


# --------------------------------------------------------------------------- RwLock


class _CheckedRwGuard(_Owned):
    """What the checked RwLock guards add: the owner, checked on every release."""

    __slots__ = ()
    _rw: Any

    def __init__(self, rw: Any) -> None:
        super().__init__(rw)  # type: ignore[call-arg]  # the fast guard, next in the MRO
        self._owner = get_ident()  # type: ignore[misc]  # a slot of each concrete guard

    def _checked_take(self) -> Any:
        rw = self._rw
        if rw is None:
            fast.released(type(self).__name__)
        self._check_owner("releasing", rw.name)
        rw._holders.pop(self._owner, None)
        return rw

    def unlock(self) -> None:
        self._checked_take()
        super().unlock()  # type: ignore[misc]

    def __exit__(self, *exc: Any) -> None:
        if self._rw is not None:
            self._checked_take()
        super().__exit__(*exc)  # type: ignore[misc]


class ReadGuard(_CheckedRwGuard, fast.ReadGuard):
    __slots__ = ("_owner",)


class WriteGuard(_CheckedRwGuard, fast.WriteGuard):
    __slots__ = ("_owner",)

    def downgrade(self) -> fast.ReadGuard:
        rw = self._checked_take()
        guard = super().downgrade()
        rw._holders[self._owner] = "read"
        return guard


class UpgradableReadGuard(_CheckedRwGuard, fast.UpgradableReadGuard):
    __slots__ = ("_owner",)

    def upgrade(self) -> fast.WriteGuard:
        rw = self._checked_take()
        try:
            guard = super().upgrade()
        except BaseException:
            rw._holders[self._owner] = "upgradable read"
            raise
        rw._holders[self._owner] = "write"
        return guard


class RwLock(fast.RwLock):
    """The fast RwLock plus a record of which thread holds it in which mode."""

    __slots__ = ("_holders",)
    _read_guard = ReadGuard
    _write_guard = WriteGuard
    _upgradable_guard = UpgradableReadGuard

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        super().__init__(value, name=name)
        self._holders: dict[int, str] = {}

    def _enter(self, mode: str, me: int) -> None:
        """Refuse a blocking or timed acquire by a thread that already holds the lock."""
        held = self._holders.get(me)
        if held is not None:
            raise RuntimeError(
                f"{self.name}: {threading.current_thread().name} asks for a {mode} guard while "
                f"it already holds {_article(held)} {held} guard; that can deadlock (a waiting writer blocks "
                "new readers), so release the first guard, or use upgradable_read()/upgrade()"
            )

    def _checked(self, mode: str, acquire: Any, deadline: float | None, blocking: bool) -> bool:
        """Run the fast `acquire`, refusing re-entry and recording who holds the lock."""
        me = get_ident()
        if not blocking and me in self._holders:
            return False  # a try_* cannot deadlock: it just finds the lock taken
        self._enter(mode, me)
        acquired: bool = acquire(self, deadline, blocking)
        if acquired:
            self._holders[me] = mode
        return acquired

    def _acquire_read(self, deadline: float | None, blocking: bool) -> bool:
        return self._checked("read", fast.RwLock._acquire_read, deadline, blocking)

    def _acquire_write(self, deadline: float | None, blocking: bool) -> bool:
        return self._checked("write", fast.RwLock._acquire_write, deadline, blocking)

    def _acquire_upgradable(self, deadline: float | None, blocking: bool) -> bool:
        return self._checked("upgradable read", fast.RwLock._acquire_upgradable, deadline, blocking)


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
