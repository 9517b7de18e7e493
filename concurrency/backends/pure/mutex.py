"""`Mutex` and `MutexGuard` in pure Python, unchecked and checked.

A Mutex is a `_locked` flag, its value and its poison behind one raw lock,
`_state`, with contended threads parked on a `WaitQueue`; it is what the `fast`
backend uses when the C accelerator is absent. `CheckedMutex` (the `threading`
backend's) also records its holder, refusing re-locking and release from
another thread.

- A guard is created before the lock is taken and attached to the mutex in
  the same critical section that takes it, and detached in the one that
  releases it, so the guard and the lock never disagree.
- A guard dropped while held releases the lock (like Rust's drop), without
  poisoning; a checked guard also warns with a `ResourceWarning` naming the
  lock and the line that acquired it. (A held guard caught in a reference
  cycle is released when the cyclic collector frees it.)
- The Condvar protocol: `guard._mutex_for_wait(condvar)` names the mutex,
  `guard._park()` releases it for the wait, `guard._unpark()` takes it back
  (raising `PoisonError` if it was poisoned meanwhile). An exception that
  interrupts `_unpark()` is raised once the lock is taken back, so a
  `Condvar.wait*` never returns or raises without holding the mutex.

Async-exception safety is best-effort in pure Python (see `_common`): an
interrupted acquire has no effect; one that lands just after the lock was
taken leaves a guard that is released when dropped.
"""

from __future__ import annotations

import sys
import threading
import warnings
from types import TracebackType
from typing import Any, NoReturn

from ... import sync
from ..._errors import check_timeout, raise_poisoned
from .. import refuse_in_model_execution
from ._common import (
    Owned,
    WaitQueue,
    allocate_lock,
    deadline_after,
    get_ident,
    next_name,
    refuse_copy,
    released,
    remaining,
)

__all__ = ["CheckedMutex", "CheckedMutexGuard", "Mutex", "MutexGuard"]


def _refuse_relock(mutex: Any) -> NoReturn:
    """Raise the error for locking `mutex` again from the thread that holds it.

    Shared by `CheckedMutex` and the C `CheckedMutex`. In a model execution every
    model thread shares one OS thread: the object was created outside it, say so.
    """
    refuse_in_model_execution()
    raise RuntimeError(
        f"{mutex.name} is already locked by this thread "
        f"({threading.current_thread().name}); locking it again would deadlock"
    )


def acquisition_site(depth: int) -> tuple[str, int] | None:
    """(file, line) of the caller `depth` frames up, for dropped-guard warnings."""
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:
        return None
    return frame.f_code.co_filename, frame.f_lineno


def site_text(site: tuple[str, int] | None) -> str:
    return "an unknown place" if site is None else f"{site[0]}:{site[1]}"


# --------------------------------------------------------------------------- unchecked


class MutexGuard(sync.MutexGuard[Any]):
    """Exclusive access to a `Mutex`'s value until `unlock()` or the end of `with`."""

    __slots__ = ("_mutex", "_waiting")
    __reduce__ = refuse_copy
    _mutex: Mutex | None
    _waiting: bool  # lent to a Condvar wait: releasing it is refused

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
        if self._waiting:
            _refuse_lent()
        mutex._release(self, None)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        mutex = self._mutex
        if mutex is not None:
            if self._waiting:
                _refuse_lent()
            mutex._release(self, exc if exc_type is not None else None)

    def __del__(self) -> None:
        mutex = getattr(self, "_mutex", None)
        if mutex is not None:  # dropped while held: released, as Rust's drop does
            mutex._drop(self)

    # Condvar support: release and re-take the lock while the guard stays logically held.
    def _mutex_for_wait(self, condvar: Any) -> Any:
        mutex = self._mutex
        if mutex is None:
            released("MutexGuard")
        return mutex

    def _park(self) -> None:
        mutex = self._mutex
        assert mutex is not None
        self._waiting = True
        mutex._release_for_wait()

    def _unpark(self) -> None:
        mutex = self._mutex
        assert mutex is not None
        try:
            mutex._relock(self)
        finally:
            self._waiting = False


def _refuse_lent() -> NoReturn:
    raise RuntimeError(
        "this MutexGuard is lent to a Condvar wait in another thread; it cannot be "
        "released until that wait returns"
    )


def _new_guard(cls: type[MutexGuard]) -> Any:
    """A guard not yet attached to a lock (cheaper than a class call)."""
    guard = MutexGuard.__new__(cls)
    guard._mutex = None
    guard._waiting = False
    return guard


class Mutex(sync.Mutex[Any]):
    """A lock that owns `value`; poisoned when an exception escapes a guard."""

    __slots__ = ("_locked", "_poison", "_queue", "_state", "_value", "name")
    _guard_class: type[MutexGuard] = MutexGuard

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        self._state = allocate_lock()
        self._locked = False
        self._queue = WaitQueue()  # threads waiting for `_locked` to clear
        self._value = value
        self._poison: BaseException | None = None
        self.name = name or next_name("Mutex")

    def lock(self) -> MutexGuard:
        guard = self._new_guard(1)
        self._acquire(guard, None, True)
        return guard

    def try_lock(self) -> MutexGuard | None:
        guard = self._new_guard(1)
        return guard if self._acquire(guard, None, False) else None

    def try_lock_for(self, seconds: float) -> MutexGuard | None:
        timeout = check_timeout(seconds, "Mutex.try_lock_for", allow_none=False)
        guard = self._new_guard(1)
        return guard if self._acquire(guard, deadline_after(timeout), True) else None

    def is_locked(self) -> bool:
        return self._locked

    def is_poisoned(self) -> bool:
        return self._poison is not None

    def clear_poison(self) -> None:
        with self._state:
            self._poison = None

    def __repr__(self) -> str:
        state = "locked" if self.is_locked() else "unlocked"
        poisoned = ", poisoned" if self._poison is not None else ""
        return f"<Mutex {self.name} {state}{poisoned}>"

    # -- internals -----------------------------------------------------------------

    def _new_guard(self, depth: int) -> MutexGuard:
        """A fresh, unattached guard (`depth`: frames up to the acquiring caller)."""
        guard: MutexGuard = _new_guard(self._guard_class)
        return guard

    def _taken(self, guard: MutexGuard) -> None:
        """Under `_state`: the lock was just taken for `guard`."""
        self._locked = True
        guard._mutex = self

    def _acquire(self, guard: MutexGuard, deadline: float | None, blocking: bool) -> bool:
        """Take the lock for `guard` (waiting if `blocking`, until `deadline`); True if taken."""
        with self._state:
            while self._locked:
                if not blocking:
                    return False
                left = remaining(deadline)
                if left == 0.0:
                    return False
                self._queue.wait(self._state, left)
            if self._poison is not None:
                raise_poisoned(self)
            self._taken(guard)
            return True

    def _release(self, guard: MutexGuard, exc: BaseException | None) -> None:
        """Release the lock held by `guard`; `exc` (when not None) escaped it and poisons."""
        with self._state:
            if guard._mutex is not self:  # released by another thread meanwhile
                released("MutexGuard")
            guard._mutex = None
            self._locked = False
            if exc is not None and self._poison is None:
                self._poison = exc
            if not self._queue.waiters:
                return
            if self._poison is not None:
                self._queue.notify_all()  # every waiter raises PoisonError
            else:
                self._queue.notify(1)

    def _drop(self, guard: MutexGuard) -> None:
        """`guard` was dropped while held: release without poisoning."""
        self._release(guard, None)

    def _release_for_wait(self) -> None:
        """A Condvar wait lets go of the lock; its guard stays attached."""
        with self._state:
            if not self._locked:
                raise RuntimeError("release unlocked lock")
            self._locked = False
            self._queue.notify(1)

    def _relock(self, guard: MutexGuard) -> None:
        """A Condvar wait takes the lock back for `guard`; raise PoisonError if poisoned.

        An exception that interrupts the waiting is raised once the lock is held again.
        """
        interrupt: BaseException | None = None
        with self._state:
            while self._locked:
                try:
                    self._queue.wait(self._state)
                except BaseException as exc:  # keep waiting: the caller's guard must hold
                    interrupt = exc
            self._taken(guard)
        if interrupt is not None:
            raise interrupt
        if self._poison is not None:
            raise_poisoned(self)


# --------------------------------------------------------------------------- checked


class CheckedMutexGuard(Owned, MutexGuard):
    """The checked guard: only its acquiring thread may release it."""

    __slots__ = ("_owner", "_site")
    _site: tuple[str, int] | None

    def unlock(self) -> None:
        mutex = self._mutex
        if mutex is None:
            released("MutexGuard")
        self._check_owner("releasing", mutex.name)
        mutex._release(self, None)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        mutex = self._mutex
        if mutex is None:
            return
        if get_ident() != self._owner:
            self._check_owner("releasing", mutex.name)
        mutex._release(self, exc if exc_type is not None else None)

    def _mutex_for_wait(self, condvar: Any) -> Any:
        mutex = super()._mutex_for_wait(condvar)
        self._check_owner(f"waiting on {condvar.name} with", mutex.name)
        return mutex


class CheckedMutex(Mutex):
    """The checked Mutex: records its holder to refuse re-locking."""

    __slots__ = ("_owner",)
    _guard_class = CheckedMutexGuard

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        super().__init__(value, name=name)
        self._owner: int | None = None

    def lock(self) -> CheckedMutexGuard:
        guard = self._new_guard(1)
        if self._owner == guard._owner:
            _refuse_relock(self)
        self._acquire(guard, None, True)
        return guard

    def try_lock(self) -> CheckedMutexGuard | None:
        guard = self._new_guard(1)
        return guard if self._acquire(guard, None, False) else None

    def try_lock_for(self, seconds: float) -> CheckedMutexGuard | None:
        guard = self._new_guard(1)
        if self._owner == guard._owner:
            _refuse_relock(self)
        timeout = check_timeout(seconds, "Mutex.try_lock_for", allow_none=False)
        return guard if self._acquire(guard, deadline_after(timeout), True) else None

    def _new_guard(self, depth: int) -> CheckedMutexGuard:
        guard: CheckedMutexGuard = _new_guard(CheckedMutexGuard)
        guard._owner = get_ident()
        guard._site = acquisition_site(depth + 1)
        return guard

    def _taken(self, guard: MutexGuard) -> None:
        self._locked = True
        guard._mutex = self
        self._owner = guard._owner  # type: ignore[attr-defined]  # a checked guard

    def _release(self, guard: MutexGuard, exc: BaseException | None) -> None:
        with self._state:
            if guard._mutex is not self:  # released by another call meanwhile
                released("MutexGuard")
            guard._mutex = None
            self._owner = None
            self._locked = False
            if exc is not None and self._poison is None:
                self._poison = exc
            if not self._queue.waiters:
                return
            if self._poison is not None:
                self._queue.notify_all()
            else:
                self._queue.notify(1)

    def _drop(self, guard: MutexGuard) -> None:
        site = site_text(guard._site)  # type: ignore[attr-defined]  # a checked guard
        warnings.warn(
            f"a guard of {self.name} acquired at {site} was dropped while held; it was "
            "released now (use `with m.lock():` to release it where you mean to)",
            ResourceWarning,
            stacklevel=2,
        )
        super()._drop(guard)

    def _release_for_wait(self) -> None:
        with self._state:
            if not self._locked:
                raise RuntimeError("release unlocked lock")
            self._owner = None
            self._locked = False
            self._queue.notify(1)
