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
from collections import deque
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
        try:
            mutex._acquire()
        except BaseException:
            # Interrupted (a signal handler raised): the lock was not taken back, so
            # the guard lets go, and the `with` block's exit releases nothing. (A
            # handler raising in the instant after acquire() returned would leave the
            # lock taken and the guard let go; the C guard has no such window.)
            self._mutex = None
            raise
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
#
# How the RwLock keeps its uncontended paths short (CPython with the GIL).
#
# `read()`, `write()` and their releases take no lock when nobody else is around:
# they use operations the GIL makes atomic and sequentially consistent (list
# append/pop, attribute loads and stores) and fall back to a slow path under the
# raw lock `_state`, with wait queues, as soon as they meet another thread. (A
# free-threaded build, PEP 703, does not order those operations this way: there
# these paths would need `_state` too.)
#
# - `_readers`: a list whose length counts the readers inside (its items mean nothing).
# - `_token`: a list holding one item while no writer and no upgradable reader holds
#   the lock; popping it is how a writer or an upgradable reader claims the lock. A
#   poisoned lock keeps the token taken until `clear_poison()`, so every writer and
#   upgradable reader goes to a slow path, and raises there.
# - `_blocked`: true while arriving readers must take the slow path, because a writer
#   holds or waits for the lock, an upgradable reader is upgrading, or it is poisoned.
# - `_waiters`: threads parked (or about to park) in a queue; a holder that releases
#   and sees it non-zero runs `_dispatch`, which hands a free token straight to the
#   first writer or upgradable reader in `_token_q` (FIFO, so none is starved) and
#   lets queued readers go ahead of the next writer (phase-fair).
#
# Two handshakes make this safe. A reader appends to `_readers`, then reads `_blocked`;
# a writer (holding the token) sets `_blocked`, then reads `_readers`: one of them sees
# the other, so readers and a writer are never inside together (and a reader leaving
# pops, then reads `_blocked`, to wake a writer waiting for the last reader). A releaser
# changes the state, then reads `_waiters`; a thread about to park raises `_waiters`
# under `_state`, then re-checks the state: it either sees the release, or the releaser
# sees it and wakes it through `_dispatch`, which runs under `_state`.
#
# `_blocked` is written lock-free only by the token's holder (set after taking the
# token, cleared just before putting it back); under `_state` it is also raised by
# waiting writers and recomputed by `_dispatch` when the token is free or held by an
# upgradable reader, whose every transition runs under `_state`.


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
        if rw is not None:  # a reader never poisons; this is `_release_read`, inlined
            self._rw = None
            rw._readers.pop()
            if rw._blocked:
                rw._reader_left()


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
        if rw is None:
            return
        self._rw = None
        if exc_type is not None:
            rw._release_write_poisoning(exc)
            return
        # `_release_write`, inlined
        rw._blocked = False
        rw._token.append(True)
        if rw._waiters:
            rw._dispatch()


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
        self._take()._release_upgradable(None)

    def upgrade(self) -> WriteGuard:
        rw = self._take()
        try:
            rw._upgrade()
        except BaseException:  # interrupted: still an upgradable reader, still this guard's
            self._rw = rw
            raise
        return rw._write_guard(rw)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        rw = self._rw
        if rw is not None:
            self._rw = None
            rw._release_upgradable(exc if exc_type is not None else None)


# Guards are built with `__new__` plus one slot store: cheaper than a class call.
_new_read_guard = ReadGuard.__new__
_new_write_guard = WriteGuard.__new__
_new_upgradable_guard = UpgradableReadGuard.__new__


def _make_read_guard(rw: RwLock) -> ReadGuard:
    guard = _new_read_guard(ReadGuard)
    guard._rw = rw
    return guard


def _make_write_guard(rw: RwLock) -> WriteGuard:
    guard = _new_write_guard(WriteGuard)
    guard._rw = rw
    return guard


def _make_upgradable_guard(rw: RwLock) -> UpgradableReadGuard:
    guard = _new_upgradable_guard(UpgradableReadGuard)
    guard._rw = rw
    return guard


class RwLock(sync.RwLock[Any]):
    """Phase-fair readers-writer lock: once a writer waits, new readers queue behind
    it, and the readers that queued get their turn when that writer leaves.

    See the comment above `ReadGuard` for how the lock-free fast paths work.
    """

    __slots__ = (
        "_blocked",
        "_drain_q",
        "_draining",
        "_poison",
        "_read_q",
        "_readers",
        "_readers_pass",
        "_state",
        "_token",
        "_token_q",
        "_upgradable",
        "_upgrading",
        "_value",
        "_waiters",
        "_writers_waiting",
        "name",
    )
    # Guard factories, called as `self._read_guard(rw)`; a subclass may use guard classes.
    _read_guard: Any = staticmethod(_make_read_guard)
    _write_guard: Any = staticmethod(_make_write_guard)
    _upgradable_guard: Any = staticmethod(_make_upgradable_guard)

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        self._value = value
        self._poison: BaseException | None = None
        self.name = name or next_name("RwLock")
        self._state = allocate_lock()
        self._readers: list[None] = []
        self._token = [True]  # `pop()` raises IndexError while somebody holds it
        self._blocked = False
        self._waiters = 0
        self._writers_waiting = 0
        self._upgradable = False  # an upgradable reader holds the token...
        self._upgrading = False  # ...and waits for the readers to leave
        self._draining = False  # a writer holds the token and waits for readers to leave
        self._readers_pass = 0  # queued readers allowed ahead of waiting writers
        self._read_q = WaitQueue()  # readers waiting for `_blocked` to clear, or a pass
        self._token_q: deque[_TokenWaiter] = deque()  # writers and upgradable readers, FIFO
        self._drain_q = WaitQueue()  # the token's holder, waiting for readers to leave

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # `read()` and `write()` inline the uncontended paths of `_acquire_read` and
        # `_acquire_write` and build this module's guards. A subclass (the checked
        # backend) hooks those methods and brings its own guards, so unless it defines
        # `read`/`write` itself it gets versions that go through them.
        super().__init_subclass__(**kwargs)
        if "read" not in cls.__dict__:
            cls.read = RwLock._read_through_hooks  # type: ignore[method-assign]
        if "write" not in cls.__dict__:
            cls.write = RwLock._write_through_hooks  # type: ignore[method-assign]

    # -- public API ----------------------------------------------------------------

    def read(self) -> ReadGuard:
        self._readers.append(None)  # `_acquire_read(None, True)`, inlined
        if self._blocked:
            self._read_contended(None, True)
        guard = _new_read_guard(ReadGuard)
        guard._rw = self
        return guard

    def write(self) -> WriteGuard:
        try:  # `_acquire_write(None, True)`, inlined
            self._token.pop()
        except IndexError:
            self._write_contended(None, True)
        else:
            self._blocked = True
            if self._readers:
                self._write_holding(None, True)
        guard = _new_write_guard(WriteGuard)
        guard._rw = self
        return guard

    def _read_through_hooks(self) -> ReadGuard:
        self._acquire_read(None, True)
        guard: ReadGuard = self._read_guard(self)
        return guard

    def _write_through_hooks(self) -> WriteGuard:
        self._acquire_write(None, True)
        guard: WriteGuard = self._write_guard(self)
        return guard

    def upgradable_read(self) -> UpgradableReadGuard:
        self._acquire_upgradable(None, True)
        guard: UpgradableReadGuard = self._upgradable_guard(self)
        return guard

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
        with self._state:
            if self._poison is None:
                return
            self._poison = None
            self._release_token_locked()  # a poisoned lock kept it

    def __repr__(self) -> str:
        writer = not self._token and not self._upgradable and self._poison is None
        poisoned = ", poisoned" if self._poison is not None else ""
        return f"<RwLock {self.name} readers={len(self._readers)} writer={writer}{poisoned}>"

    # -- readers -------------------------------------------------------------------

    def _acquire_read(self, deadline: float | None, blocking: bool) -> bool:
        self._readers.append(None)
        if not self._blocked:
            return True
        return self._read_contended(deadline, blocking)

    def _read_contended(self, deadline: float | None, blocking: bool) -> bool:
        """A reader's optimistic entry met `_blocked`: back out, then wait for a way in."""
        with self._state:
            self._leave_read_locked()
            self._waiters += 1
            try:
                while True:
                    if self._poison is not None:
                        raise_poisoned(self)
                    if self._enter_read_locked():
                        return True
                    if not blocking:
                        return False
                    left = remaining(deadline)
                    if left == 0.0:
                        return False
                    self._read_q.wait(self._state, left)
            finally:
                self._waiters -= 1

    def _release_read(self) -> None:
        self._readers.pop()
        if self._blocked:
            self._reader_left()

    def _reader_left(self) -> None:
        """A reader left while `_blocked`: the token's holder may wait for the last one."""
        with self._state:
            if not self._readers and self._drain_q:
                self._drain_q.notify(1)

    def _leave_read_locked(self) -> None:
        self._readers.pop()
        if not self._readers and self._drain_q:
            self._drain_q.notify(1)

    def _enter_read_locked(self) -> bool:
        """Under `_state`: count this reader in if it may enter now."""
        self._readers.append(None)
        if not self._blocked:
            return True
        if self._readers_pass and self._readers_may_pass():
            self._readers_pass -= 1
            return True
        self._leave_read_locked()
        return False

    def _readers_may_pass(self) -> bool:
        """Under `_state`, counted in: may a reader with a pass go ahead of waiting writers?

        Yes unless a writer is inside or an upgradable reader is upgrading. A free token
        is safe to go past: a writer that takes it next sees this reader and waits.
        """
        if self._token:
            return True
        if self._upgradable:
            return not self._upgrading
        return self._draining  # the writer holding the token still waits for readers

    def _pass_queued_readers(self) -> None:
        """Under `_state`: wake every queued reader with a pass past waiting writers.

        They count themselves in when they run. (Counting them in here would make the
        next writer wait for threads that are not running yet: a convoy under the GIL.)
        """
        self._readers_pass = len(self._read_q)
        self._read_q.notify_all()

    # -- writers -------------------------------------------------------------------

    def _acquire_write(self, deadline: float | None, blocking: bool) -> bool:
        try:
            self._token.pop()
        except IndexError:
            return self._write_contended(deadline, blocking)
        self._blocked = True
        if self._readers:
            return self._write_holding(deadline, blocking)
        return True

    def _write_holding(self, deadline: float | None, blocking: bool) -> bool:
        """We took the token, and so blocked new readers, but found readers inside."""
        with self._state:
            if blocking:
                return self._drain_locked(deadline)
            if self._readers:
                self._release_token_locked()
                return False
            return True

    def _write_contended(self, deadline: float | None, blocking: bool) -> bool:
        """The token is taken: queue for it, holding new readers back meanwhile."""
        with self._state:
            if self._poison is not None:
                raise_poisoned(self)
            if not blocking or not self._wait_for_token_locked(deadline, False):
                return False
            self._blocked = True
            return self._drain_locked(deadline)

    def _drain_locked(self, deadline: float | None) -> bool:
        """Holding the token and `_state`: let queued readers in, then wait for all to leave."""
        if self._read_q:
            self._pass_queued_readers()  # they queued before us: phase-fair
        self._draining = True
        try:
            while self._readers:
                left = remaining(deadline)
                if left == 0.0:
                    self._draining = False
                    self._release_token_locked()
                    return False
                self._drain_q.wait(self._state, left)
        except BaseException:  # interrupted (KeyboardInterrupt): give the token back too
            self._draining = False
            self._release_token_locked()
            raise
        finally:
            self._draining = False
        return True

    def _release_write(self) -> None:
        self._blocked = False
        self._token.append(True)
        if self._waiters:
            self._dispatch()

    def _release_write_poisoning(self, exc: BaseException | None) -> None:
        with self._state:
            self._poison_locked(exc)

    def _downgrade(self) -> None:
        self._readers.append(None)  # count ourselves in before anyone can take the token
        self._release_write()

    # -- upgradable readers --------------------------------------------------------

    def _acquire_upgradable(self, deadline: float | None, blocking: bool) -> bool:
        with self._state:
            if self._poison is not None:
                raise_poisoned(self)
            if not self._token_q:  # else they queued first
                try:
                    self._token.pop()
                except IndexError:
                    pass
                else:
                    self._upgradable = True
                    return True
            return blocking and self._wait_for_token_locked(deadline, True)

    def _release_upgradable(self, exc: BaseException | None) -> None:
        """Give the token back; `exc` (when not None) escaped the guard and poisons."""
        with self._state:
            self._upgradable = False
            if exc is not None:
                self._poison_locked(exc)
            else:
                self._release_token_locked()

    def _upgrade(self) -> None:
        with self._state:
            self._upgrading = True
            self._blocked = True
            try:
                while self._readers:
                    self._drain_q.wait(self._state)
            except BaseException:
                self._upgrading = False
                self._dispatch_locked()  # readers may come in again
                raise
            self._upgrading = False
            self._upgradable = False  # the token now belongs to a writer

    # -- hand-over -----------------------------------------------------------------

    def _poison_locked(self, exc: BaseException | None) -> None:
        """The token's holder crashed: keep the token (no writer or upgradable reader gets
        it until `clear_poison()`), hold readers back, and wake every waiter to raise."""
        self._poison = exc
        self._blocked = True
        self._read_q.notify_all()
        for waiter in self._token_q:
            waiter.wake()  # not granted: it sees the poison

    def _release_token_locked(self) -> None:
        self._token.append(True)
        self._dispatch_locked()

    def _dispatch(self) -> None:
        with self._state:
            self._dispatch_locked()

    def _dispatch_locked(self) -> None:
        """Under `_state`, after a release or a change of plan: let in whoever may go now.

        A free token goes straight to the first queued writer or upgradable reader, so
        that a thread which releases and at once asks again cannot barge ahead of them.
        """
        held_back = bool(self._writers_waiting)
        try:
            self._token.pop()
        except IndexError:
            if self._upgradable and not self._upgrading:
                # The holder is an upgradable reader, which readers may share the lock with.
                self._blocked = held_back
                if not held_back:
                    self._read_q.notify_all()
            return  # else a writer holds the token, and dispatches when it gives it back
        if not self._token_q:
            self._blocked = held_back
            self._token.append(True)
        else:
            waiter = self._token_q.popleft()
            if waiter.upgradable:
                self._upgradable = True
                self._blocked = held_back
            else:
                self._blocked = True
                self._draining = True  # it waits for readers as soon as it runs
            waiter.granted = True
            waiter.wake()
        if self._read_q:
            self._pass_queued_readers()  # queued readers go before the next writer

    def _wait_for_token_locked(self, deadline: float | None, upgradable: bool) -> bool:
        """Under `_state`: queue for the token until `_dispatch_locked` hands it to us.

        True once it is ours (an upgradable reader is then marked in); False when
        `deadline` passed first. Raises PoisonError when the lock gets poisoned.
        """
        waiter = _TokenWaiter(upgradable)
        self._token_q.append(waiter)
        self._waiters += 1  # then check again: see the handshakes above
        if not upgradable:
            self._writers_waiting += 1
            self._blocked = True
        try:
            while not waiter.granted:
                if self._token:  # given back by a holder that did not see us: pass it on
                    self._dispatch_locked()
                    continue
                if self._poison is not None:
                    raise_poisoned(self)
                left = remaining(deadline)
                if left == 0.0:
                    return False
                self._state.release()
                try:
                    waiter.park(left)
                finally:
                    self._state.acquire()
            return True
        except BaseException:
            if waiter.granted:  # handed to us as we gave up: give it back
                self._upgradable = self._draining = False
                self._release_token_locked()
            raise
        finally:
            self._waiters -= 1
            if not upgradable:
                self._writers_waiting -= 1
            if not waiter.granted:
                self._token_q.remove(waiter)
                self._dispatch_locked()  # we no longer hold readers back


class _TokenWaiter:
    """A writer or upgradable reader parked in `RwLock._token_q` until handed the token."""

    __slots__ = ("_parked", "_woken", "granted", "upgradable")

    def __init__(self, upgradable: bool) -> None:
        self.upgradable = upgradable
        self.granted = False
        self._woken = False
        self._parked = allocate_lock()
        self._parked.acquire()

    def park(self, timeout: float | None) -> None:
        """Sleep until `wake()` or `timeout` (seconds; None: no limit)."""
        self._parked.acquire(True, -1 if timeout is None else timeout)

    def wake(self) -> None:
        """Wake the parked thread (called under the RwLock's `_state`; later calls do nothing)."""
        if not self._woken:
            self._woken = True
            self._parked.release()


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
