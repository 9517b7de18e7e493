"""The `threading` backend: the checked reference, built on the standard library.

It detects misuse instead of hanging or corrupting, and says what went wrong:

- re-locking a `Mutex`, or re-acquiring an `RwLock`, that the thread already
  holds (which would deadlock);
- releasing a guard from a thread other than the one that acquired it;
- using a guard after it was released, and releasing it twice;
- a `Condvar` used with two different mutexes.

`readerwriterlock.RWLockFair` is the baseline our `RwLock` is measured against
(see `stress/bench_sync.py`); it has no upgradable reads, so it is not the base.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from .._errors import raise_poisoned
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


class _Owned:
    """Mixin for checked guards: remembers the acquiring thread and refuses others."""

    __slots__ = ()
    _owner: int

    def _check_owner(self, action: str, lock_name: str) -> None:
        me = get_ident()
        if me != self._owner:
            raise RuntimeError(
                f"{action} a guard of {lock_name} from {threading.current_thread().name}, but "
                f"it was acquired by {_thread_name(self._owner)}: only the owner may release it"
            )


# --------------------------------------------------------------------------- Mutex


class MutexGuard(_Owned, fast.PyMutexGuard):
    __slots__ = ("_owner",)

    def __init__(self, mutex: Mutex, owner: int) -> None:
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
        mutex._acquire()
        mutex._owner = self._owner
        if mutex._poison is not None:
            raise_poisoned(mutex)


_new_guard = MutexGuard.__new__


class Mutex(fast.PyMutex):
    __slots__ = ("_owner",)

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        super().__init__(value, name=name)
        self._owner: int | None = None

    def _check_not_held(self, me: int) -> None:
        if self._owner == me:
            raise RuntimeError(
                f"{self.name} is already locked by this thread "
                f"({threading.current_thread().name}); locking it again would deadlock"
            )

    def _guard(self, me: int) -> MutexGuard:
        """Record the owner and hand out a guard (refusing if poisoned)."""
        if self._poison is not None:
            self._release()
            raise_poisoned(self)
        self._owner = me
        guard = _new_guard(MutexGuard)
        guard._mutex = self
        guard._owner = me
        return guard

    def lock(self) -> MutexGuard:
        me = get_ident()
        if self._owner == me:
            self._check_not_held(me)
        self._acquire()
        if self._poison is not None:
            self._release()
            raise_poisoned(self)
        self._owner = me
        guard = _new_guard(MutexGuard)
        guard._mutex = self
        guard._owner = me
        return guard

    def try_lock(self) -> MutexGuard | None:
        me = get_ident()
        if not self._acquire(False):
            return None
        return self._guard(me)

    def try_lock_for(self, seconds: float) -> MutexGuard | None:
        me = get_ident()
        self._check_not_held(me)
        from .._errors import check_timeout

        timeout = check_timeout(seconds, "Mutex.try_lock_for", allow_none=False)
        assert timeout is not None
        if not self._acquire(True, timeout):
            return None
        return self._guard(me)


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
        guard = super().upgrade()
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
