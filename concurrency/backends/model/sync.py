"""`concurrency.sync` under the model: every operation is a scheduling point.

The simulated threads never run at the same time, so these primitives need no
real locking: each operation calls `Execution.point` with a predicate saying
when it can proceed, then acts on plain state. They check misuse like the
`threading` backend does (re-locking, foreign releases, use after release).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from ... import sync
from ..._errors import BrokenBarrierError, Disconnected, Empty, check_timeout, raise_poisoned
from ...sync import atomic
from .. import execution_state
from .runtime import label


def _runtime() -> Any:
    runtime = execution_state.runtime
    if runtime is None:
        raise RuntimeError("model primitives can only be created inside a model execution")
    return runtime


def _released(kind: str) -> NoReturn:
    raise RuntimeError(f"this {kind} was already released; it cannot be used any more")


def _held_by(holders: list[Any]) -> str:
    """` held by worker-1` (empty when nobody is known to hold it), for deadlock reports."""
    names = [label(holder) + (" (finished)" if holder.finished else "")
             for holder in holders if holder is not None]
    return f" held by {' and '.join(names)}" if names else ""


def _foreign(action: str, lock: Any, owner: Any, me: Any) -> NoReturn:
    raise RuntimeError(
        f"{action} a guard of {lock.name} from {label(me)}, but it was acquired by "
        f"{label(owner)}: only the owner may release it"
    )


class _Modelled:
    """Base of model objects: the execution they belong to and a deterministic name.

    Subclasses declare the `_rt` and `name` slots.
    """

    __slots__ = ()
    if TYPE_CHECKING:
        _rt: Any
        name: str

    def _setup(self, kind: str, name: str | None) -> Any:
        runtime = _runtime()
        self._rt = runtime
        self.name = runtime.name_for(kind, name)  # type: ignore[misc]  # slot of the subclass
        return runtime


# --------------------------------------------------------------------------- Mutex


class MutexGuard(sync.MutexGuard[Any]):
    __slots__ = ("_mutex", "_owner")

    def __init__(self, mutex: Mutex, owner: Any) -> None:
        self._mutex: Mutex | None = mutex
        self._owner = owner

    def _held(self) -> Mutex:
        mutex = self._mutex
        if mutex is None:
            _released("MutexGuard")
        return mutex

    @property
    def value(self) -> Any:
        return self._held()._value

    @value.setter
    def value(self, new: Any) -> None:
        self._held()._value = new

    def _release(self, exc: BaseException | None) -> None:
        mutex = self._mutex
        if mutex is None:
            _released("MutexGuard")
        runtime = mutex._rt
        if runtime.current is not self._owner:
            _foreign("releasing", mutex, self._owner, runtime.current)
        runtime.point("unlock", mutex)
        self._mutex = None
        if exc is not None and mutex._poison is None:
            mutex._poison = exc
        mutex._owner = None

    def unlock(self) -> None:
        self._release(None)

    def __repr__(self) -> str:  # shown in pytest's assertion explanations
        mutex = self._mutex
        return f"<MutexGuard of {mutex.name}>" if mutex is not None else "<MutexGuard (released)>"

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._mutex is not None:
            self._release(exc)


class Mutex(_Modelled, sync.Mutex[Any]):
    __slots__ = ("_owner", "_poison", "_rt", "_value", "name")

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        self._setup("Mutex", name)
        self._value = value
        self._owner: Any = None
        self._poison: BaseException | None = None

    def _free(self) -> bool:
        return self._owner is None

    def _check_not_held(self, me: Any) -> None:
        if self._owner is me:
            raise RuntimeError(
                f"{self.name} is already locked by this thread ({label(me)}); "
                "locking it again would deadlock"
            )

    def _take(self, me: Any) -> MutexGuard:
        if self._poison is not None:
            raise_poisoned(self)
        self._owner = me
        return MutexGuard(self, me)

    def lock(self) -> MutexGuard:
        runtime = self._rt
        me = runtime.current
        if self._owner is me:
            self._check_not_held(me)
        runtime.point("lock", self, self._free)
        if self._poison is not None:
            raise_poisoned(self)
        self._owner = me
        return MutexGuard(self, me)

    def try_lock(self) -> MutexGuard | None:
        runtime = self._rt
        me = runtime.current
        runtime.point("try_lock", self)
        if self._owner is not None:
            if runtime.tracing:
                runtime.annotate("-> None")
            return None
        return self._take(me)

    def try_lock_for(self, seconds: float) -> MutexGuard | None:
        timeout = check_timeout(seconds, "Mutex.try_lock_for", allow_none=False)
        runtime = self._rt
        me = runtime.current
        self._check_not_held(me)
        if not runtime.point("try_lock_for", self, self._free, runtime.clock + timeout):
            return None
        return self._take(me)

    def is_locked(self) -> bool:
        self._rt.point("is_locked", self)
        return self._owner is not None

    def is_poisoned(self) -> bool:
        self._rt.point("is_poisoned", self)
        return self._poison is not None

    def clear_poison(self) -> None:
        self._rt.point("clear_poison", self)
        self._poison = None

    def _waits(self, waiter: Any) -> tuple[str, list[Any]]:
        """For a deadlock report: what a thread blocked on this lock waits for."""
        owner = self._owner
        holders = [owner] if owner is not None else []
        if waiter.op == "relock":
            return f"to relock {self.name}{_held_by(holders)} (after a Condvar wait)", holders
        return f"for {self.name}{_held_by(holders)}", holders

    def __repr__(self) -> str:
        return f"<model Mutex {self.name}>"


# --------------------------------------------------------------------------- RwLock


class _RwGuard:
    """Shared body of the three RwLock guards."""

    __slots__ = ()
    _rw: Any
    _owner: Any
    _kind = "guard"

    def _held(self) -> RwLock:
        rw = self._rw
        if rw is None:
            _released(type(self).__name__)
        return rw

    def _take(self, action: str) -> RwLock:
        rw = self._held()
        runtime = rw._rt
        if runtime.current is not self._owner:
            _foreign(action, rw, self._owner, runtime.current)
        self._rw = None
        return rw

    @property
    def value(self) -> Any:
        return self._held()._value

    def __repr__(self) -> str:  # shown in pytest's assertion explanations
        rw = self._rw
        kind = type(self).__name__
        return f"<{kind} of {rw.name}>" if rw is not None else f"<{kind} (released)>"


class ReadGuard(_RwGuard, sync.ReadGuard[Any]):
    __slots__ = ("_owner", "_rw")

    def __init__(self, rw: RwLock, owner: Any) -> None:
        self._rw: RwLock | None = rw
        self._owner = owner

    def unlock(self) -> None:
        self._take("releasing")._release_read(self._owner)

    def __exit__(self, *exc: Any) -> None:
        if self._rw is not None:
            self.unlock()


class WriteGuard(_RwGuard, sync.WriteGuard[Any]):
    __slots__ = ("_owner", "_rw")

    def __init__(self, rw: RwLock, owner: Any) -> None:
        self._rw: RwLock | None = rw
        self._owner = owner

    @property
    def value(self) -> Any:
        return self._held()._value

    @value.setter
    def value(self, new: Any) -> None:
        self._held()._value = new

    def unlock(self) -> None:
        self._take("releasing")._release_write(self._owner, None)

    def downgrade(self) -> ReadGuard:
        rw = self._take("downgrading")
        rw._downgrade(self._owner)
        return ReadGuard(rw, self._owner)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._rw is not None:
            self._take("releasing")._release_write(self._owner, exc)


class UpgradableReadGuard(_RwGuard, sync.UpgradableReadGuard[Any]):
    __slots__ = ("_owner", "_rw")

    def __init__(self, rw: RwLock, owner: Any) -> None:
        self._rw: RwLock | None = rw
        self._owner = owner

    def unlock(self) -> None:
        self._take("releasing")._release_upgradable(self._owner, None)

    def upgrade(self) -> WriteGuard:
        rw = self._held()
        if self._owner is rw._rt.current and len(rw._holders.get(self._owner.id, ())) > 1:
            raise RuntimeError(
                f"{rw.name}: {label(self._owner)} asks to upgrade while it also holds a read "
                "guard; upgrade() waits for every reader to leave, so it would deadlock: "
                "release the read guard first"
            )
        rw = self._take("upgrading")
        rw._upgrade(self._owner)
        return WriteGuard(rw, self._owner)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._rw is not None:
            self._take("releasing")._release_upgradable(self._owner, exc)


class RwLock(_Modelled, sync.RwLock[Any]):
    """Writer-preferring like the real ones: a waiting writer holds back new readers."""

    __slots__ = (
        "_holders",
        "_poison",
        "_readers",
        "_rt",
        "_upgradable",
        "_upgrading",
        "_value",
        "_writer",
        "_writers_waiting",
        "name",
    )

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        self._setup("RwLock", name)
        self._value = value
        self._poison: BaseException | None = None
        self._readers = 0
        self._writer: Any = None
        self._upgradable: Any = None
        self._upgrading = False
        self._writers_waiting = 0
        # Thread id -> modes of the guards it holds (several only through try_*).
        self._holders: dict[int, list[str]] = {}

    # -- readiness ---------------------------------------------------------------------

    def _can_read(self) -> bool:
        return self._writer is None and not self._writers_waiting and not self._upgrading

    def _can_write(self) -> bool:
        return self._writer is None and not self._readers and self._upgradable is None

    def _can_upgradable(self) -> bool:
        return self._writer is None and self._upgradable is None and not self._writers_waiting

    def _no_readers(self) -> bool:
        return not self._readers

    # -- acquisition ---------------------------------------------------------------------

    def _enter(self, mode: str) -> Any:
        """Refuse a blocking or timed acquire by a thread that already holds the lock."""
        me = self._rt.current
        modes = self._holders.get(me.id)
        if modes:
            held = modes[0]
            raise RuntimeError(
                f"{self.name}: {label(me)} asks for a {mode} guard while it already holds a "
                f"{held} guard; that can deadlock (a waiting writer blocks new readers)"
            )
        return me

    def _admit(self, me: Any, mode: str) -> None:
        if self._poison is not None:
            raise_poisoned(self)
        self._holders.setdefault(me.id, []).append(mode)
        if mode == "read":
            self._readers += 1
        elif mode == "write":
            self._writer = me
        else:
            self._upgradable = me

    def _acquire(self, op: str, mode: str, ready: Callable[[], bool], blocking: bool,
                 timeout: float | None) -> Any:
        """Shared path of read/upgradable: one point, then admit (or None).

        A try_* never waits, so it cannot deadlock: it reports the lock's state even
        to a thread that already holds a guard of it.
        """
        runtime = self._rt
        me = runtime.current if not blocking else self._enter(mode)
        if not blocking:
            runtime.point(op, self)
            if not ready():
                if runtime.tracing:
                    runtime.annotate("-> None")
                return None
        else:
            deadline = None if timeout is None else runtime.clock + timeout
            if not runtime.point(op, self, ready, deadline):
                return None
        self._admit(me, mode)
        return me

    def _acquire_write(self, op: str, blocking: bool, timeout: float | None) -> Any:
        """A writer first announces itself (holding back new readers), then waits."""
        runtime = self._rt
        if not blocking:
            return self._acquire(op, "write", self._can_write, False, None)
        me = self._enter("write")
        runtime.point(op, self)
        if runtime.tracing:  # two steps: the request (holding back new readers), the grant
            runtime.annotate("(requested)" if self._can_write() else "(blocks)")
        self._writers_waiting += 1
        deadline = None if timeout is None else runtime.clock + timeout
        try:
            acquired = runtime.point(op, self, self._can_write, deadline)
        finally:
            self._writers_waiting -= 1
        if not acquired:
            return None
        if runtime.tracing:
            runtime.annotate("(acquired)")
        self._admit(me, "write")
        return me

    def read(self) -> ReadGuard:
        return ReadGuard(self, self._acquire("read", "read", self._can_read, True, None))

    def try_read(self) -> ReadGuard | None:
        me = self._acquire("try_read", "read", self._can_read, False, None)
        return None if me is None else ReadGuard(self, me)

    def try_read_for(self, seconds: float) -> ReadGuard | None:
        timeout = check_timeout(seconds, "RwLock.try_read_for", allow_none=False)
        me = self._acquire("try_read_for", "read", self._can_read, True, timeout)
        return None if me is None else ReadGuard(self, me)

    def write(self) -> WriteGuard:
        return WriteGuard(self, self._acquire_write("write", True, None))

    def try_write(self) -> WriteGuard | None:
        me = self._acquire_write("try_write", False, None)
        return None if me is None else WriteGuard(self, me)

    def try_write_for(self, seconds: float) -> WriteGuard | None:
        timeout = check_timeout(seconds, "RwLock.try_write_for", allow_none=False)
        me = self._acquire_write("try_write_for", True, timeout)
        return None if me is None else WriteGuard(self, me)

    def upgradable_read(self) -> UpgradableReadGuard:
        me = self._acquire("upgradable_read", "upgradable read", self._can_upgradable, True, None)
        return UpgradableReadGuard(self, me)

    def try_upgradable_read(self) -> UpgradableReadGuard | None:
        me = self._acquire(
            "try_upgradable_read", "upgradable read", self._can_upgradable, False, None
        )
        return None if me is None else UpgradableReadGuard(self, me)

    # -- release and conversion ------------------------------------------------------------

    def _forget(self, me: Any, mode: str) -> None:
        modes = self._holders[me.id]
        modes.remove(mode)
        if not modes:
            del self._holders[me.id]

    def _release_read(self, me: Any) -> None:
        self._rt.point("read_unlock", self)
        self._readers -= 1
        self._forget(me, "read")

    def _release_write(self, me: Any, exc: BaseException | None) -> None:
        self._rt.point("write_unlock", self)
        if exc is not None and self._poison is None:
            self._poison = exc
        self._writer = None
        self._forget(me, "write")

    def _release_upgradable(self, me: Any, exc: BaseException | None) -> None:
        self._rt.point("upgradable_unlock", self)
        if exc is not None and self._poison is None:
            self._poison = exc
        self._upgradable = None
        self._forget(me, "upgradable read")

    def _upgrade(self, me: Any) -> None:
        runtime = self._rt
        runtime.point("upgrade", self)
        if runtime.tracing:  # two steps: the request (holding back new readers), the grant
            runtime.annotate("(requested)" if self._no_readers() else "(blocks)")
        self._upgrading = True
        try:
            runtime.point("upgrade", self, self._no_readers)
        finally:
            self._upgrading = False
        if runtime.tracing:
            runtime.annotate("(upgraded)")
        self._upgradable = None
        self._writer = me
        self._forget(me, "upgradable read")
        self._holders.setdefault(me.id, []).append("write")

    def _downgrade(self, me: Any) -> None:
        self._rt.point("downgrade", self)
        self._writer = None
        self._readers += 1
        self._forget(me, "write")
        self._holders.setdefault(me.id, []).append("read")

    def is_poisoned(self) -> bool:
        self._rt.point("is_poisoned", self)
        return self._poison is not None

    def clear_poison(self) -> None:
        self._rt.point("clear_poison", self)
        self._poison = None

    _WANTS = {"read": "to read", "try_read_for": "to read", "write": "to write",
              "try_write_for": "to write", "upgradable_read": "for an upgradable read of",
              "upgrade": "to upgrade"}

    def _waits(self, waiter: Any) -> tuple[str, list[Any]]:
        """For a deadlock report: what a thread blocked on this lock waits for, and who holds
        it (in which mode)."""
        threads = self._rt.threads
        holders = [threads[ident] for ident in self._holders if ident != waiter.id]
        modes = [f"{label(threads[ident])} ({', '.join(held)}"
                 + (", finished)" if threads[ident].finished else ")")
                 for ident, held in self._holders.items() if ident != waiter.id]
        wants = self._WANTS.get(waiter.op, f"in {waiter.op} of")
        held = f" held by {' and '.join(modes)}" if modes else ""
        queued = " (a writer waits first)" if waiter.op == "read" and self._writers_waiting else ""
        return f"{wants} {self.name}{held}{queued}", holders


# --------------------------------------------------------------------------- Condvar


class _Waiter:
    __slots__ = ("notified",)

    def __init__(self) -> None:
        self.notified = False

    def is_notified(self) -> bool:
        return self.notified


class Condvar(_Modelled, sync.Condvar):
    __slots__ = ("_mutex", "_rt", "_waiters", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self._setup("Condvar", name)
        self._mutex: Any = None
        self._waiters: deque[_Waiter] = deque()

    def _bind(self, guard: Any) -> Mutex:
        if not isinstance(guard, MutexGuard):
            raise TypeError(f"{self.name}.wait needs a MutexGuard, got {guard!r}")
        mutex = guard._held()
        me = self._rt.current
        if guard._owner is not me:
            _foreign(f"waiting on {self.name} with", mutex, guard._owner, me)
        if self._mutex is None:
            self._mutex = mutex
        elif self._mutex is not mutex:
            raise RuntimeError(
                f"{self.name} was used with {self._mutex.name} and now with {mutex.name}; "
                "a Condvar must always be used with the same Mutex"
            )
        return mutex

    def _wait(self, guard: Any, timeout: float | None) -> bool:
        """Release, block until notified (or timed out), re-acquire; True if notified."""
        mutex = self._bind(guard)
        runtime = self._rt
        me = runtime.current
        runtime.point("wait", self)
        waiter = _Waiter()
        self._waiters.append(waiter)  # registered before the release: no lost wakeup
        runtime.point("unlock", mutex)  # the release is a step on the mutex, not the condvar
        if runtime.tracing:
            runtime.annotate(f"(in {self.name}.wait)")
        mutex._owner = None
        deadline = None if timeout is None else runtime.clock + timeout
        if not runtime.point("wait", self, waiter.is_notified, deadline):
            self._waiters.remove(waiter)
        elif runtime.tracing:
            runtime.annotate("(notified)")
        runtime.point("relock", mutex, mutex._free)
        mutex._owner = me
        if mutex._poison is not None:
            raise_poisoned(mutex)
        return waiter.notified

    def wait(self, guard: Any) -> None:
        self._wait(guard, None)

    def wait_while(self, guard: Any, predicate: Callable[[Any], bool]) -> None:
        while predicate(guard.value):
            self._wait(guard, None)

    def wait_timeout(self, guard: Any, seconds: float) -> bool:
        timeout = check_timeout(seconds, "Condvar.wait_timeout", allow_none=False)
        return not self._wait(guard, timeout)

    def wait_timeout_while(self, guard: Any, seconds: float,
                           predicate: Callable[[Any], bool]) -> bool:
        timeout = check_timeout(seconds, "Condvar.wait_timeout_while", allow_none=False)
        assert timeout is not None
        deadline = self._rt.clock + timeout
        while predicate(guard.value):
            left = deadline - self._rt.clock
            if left <= 0:
                return True
            self._wait(guard, left)
        return False

    def _waits(self, waiter: Any) -> tuple[str, list[Any]]:
        """For a deadlock report: a thread blocked here was not notified (or it could go on)."""
        return f"in {self.name}.wait (not notified)", []

    def notify_one(self) -> None:
        self._rt.point("notify_one", self)
        if self._waiters:
            self._waiters.popleft().notified = True

    def notify_all(self) -> None:
        self._rt.point("notify_all", self)
        while self._waiters:
            self._waiters.popleft().notified = True


# --------------------------------------------------------------------------- OnceLock

_UNSET: Any = object()


class OnceLock(_Modelled, sync.OnceLock[Any]):
    __slots__ = ("_initializer", "_rt", "_value", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self._setup("OnceLock", name)
        self._value = _UNSET
        self._initializer: Any = None

    def _idle(self) -> bool:
        return self._initializer is None or self._value is not _UNSET

    def _check_not_reentrant(self, what: str) -> None:
        if self._initializer is self._rt.current:
            raise RuntimeError(
                f"{self.name}.{what}() called from inside its own initializer: it would deadlock"
            )

    def _waits(self, waiter: Any) -> tuple[str, list[Any]]:
        """For a deadlock report: a thread blocked here waits for the initializer."""
        initializer = self._initializer
        by = f", being initialized by {label(initializer)}" if initializer is not None else ""
        return f"for {self.name}{by}", [initializer]

    def get(self) -> Any:
        self._rt.point("get", self)
        value = self._value
        return None if value is _UNSET else value

    def set(self, value: Any) -> bool:
        self._check_not_reentrant("set")
        self._rt.point("set", self, self._idle)
        if self._value is not _UNSET:
            return False
        self._value = value
        return True

    def get_or_init(self, fn: Callable[[], Any]) -> Any:
        self._check_not_reentrant("get_or_init")
        self._rt.point("get_or_init", self, self._idle)
        if self._value is not _UNSET:
            return self._value
        self._initializer = self._rt.current
        try:
            value = fn()
        except BaseException:
            self._rt.point("init_failed", self)  # clearing is a step on the cell
            self._initializer = None
            raise
        self._rt.point("init_done", self)  # publishing is a step on the cell
        self._initializer = None
        self._value = value
        return value


# --------------------------------------------------------------------------- Barrier


class _Round:
    __slots__ = ("arrived", "broken", "done")

    def __init__(self) -> None:
        self.arrived = 0
        self.done = False
        self.broken = False

    def over(self) -> bool:
        return self.done or self.broken


class Barrier(_Modelled, sync.Barrier):
    __slots__ = ("_broken", "_round", "_rt", "name", "parties")

    def __init__(self, parties: int, *, name: str | None = None) -> None:
        if isinstance(parties, bool) or not isinstance(parties, int) or parties < 1:
            raise ValueError(f"Barrier: parties must be an int >= 1, got {parties!r}")
        self._setup("Barrier", name)
        self.parties = parties
        self._round = _Round()
        self._broken = False

    def wait(self, timeout: float | None = None) -> sync.BarrierWaitResult:
        timeout = check_timeout(timeout, "Barrier.wait")
        runtime = self._rt
        runtime.point("wait", self)
        if self._broken:
            if runtime.tracing:
                runtime.annotate("(broken)")
            raise BrokenBarrierError(f"{self.name} is broken")
        current = self._round
        current.arrived += 1
        if runtime.tracing:
            runtime.annotate(f"(arrives {current.arrived} of {self.parties})")
        if current.arrived == self.parties:
            current.done = True
            self._round = _Round()
            return sync.BarrierWaitResult(is_leader=True)
        deadline = None if timeout is None else runtime.clock + timeout
        if not runtime.point("wait", self, current.over, deadline):
            self._break(current)
        elif runtime.tracing:
            runtime.annotate("(broken)" if current.broken else "(released)")
        if current.broken:
            raise BrokenBarrierError(f"{self.name} was broken while waiting")
        return sync.BarrierWaitResult(is_leader=False)

    def _break(self, current: _Round) -> None:
        """Break `current`; its waiters leave, so a fresh round starts (n_waiting is 0)."""
        current.broken = True
        self._broken = True
        if current is self._round:
            self._round = _Round()

    def _waits(self, waiter: Any) -> tuple[str, list[Any]]:
        """For a deadlock report: a thread blocked here waits for the other parties."""
        return f"at {self.name} ({self._round.arrived} of {self.parties} arrived)", []

    def abort(self) -> None:
        self._rt.point("abort", self)
        self._break(self._round)

    def reset(self) -> None:
        self._rt.point("reset", self)
        if self._round.arrived:
            self._round.broken = True
        self._round = _Round()
        self._broken = False

    @property
    def broken(self) -> bool:
        self._rt.point("broken", self)
        return self._broken

    @property
    def n_waiting(self) -> int:
        self._rt.point("n_waiting", self)
        return self._round.arrived


# --------------------------------------------------------------------------- Semaphore


class SemaphoreGuard(sync.SemaphoreGuard):
    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: Semaphore) -> None:
        self._semaphore: Semaphore | None = semaphore

    def unlock(self) -> None:
        semaphore = self._semaphore
        if semaphore is None:
            raise RuntimeError("this Semaphore permit was already released")
        semaphore._rt.point("release", semaphore)
        self._semaphore = None
        semaphore._permits += 1

    def __exit__(self, *exc: Any) -> None:
        if self._semaphore is not None:
            self.unlock()


class Semaphore(_Modelled, sync.Semaphore):
    __slots__ = ("_permits", "_rt", "name")

    def __init__(self, permits: int, *, name: str | None = None) -> None:
        if isinstance(permits, bool) or not isinstance(permits, int) or permits < 0:
            raise ValueError(f"Semaphore: permits must be an int >= 0, got {permits!r}")
        self._setup("Semaphore", name)
        self._permits = permits

    def _has_permit(self) -> bool:
        return self._permits > 0

    def _waits(self, waiter: Any) -> tuple[str, list[Any]]:
        """For a deadlock report: a thread blocked here waits for a permit."""
        return f"for a permit of {self.name} (none left)", []

    def _take(self, op: str, blocking: bool, timeout: float | None) -> SemaphoreGuard | None:
        runtime = self._rt
        if blocking:
            deadline = None if timeout is None else runtime.clock + timeout
            if not runtime.point(op, self, self._has_permit, deadline):
                return None
        else:
            runtime.point(op, self)
            if not self._permits:
                return None
        self._permits -= 1
        return SemaphoreGuard(self)

    def acquire(self) -> SemaphoreGuard:
        guard = self._take("acquire", True, None)
        assert guard is not None
        return guard

    def try_acquire(self) -> SemaphoreGuard | None:
        return self._take("try_acquire", False, None)

    def try_acquire_for(self, seconds: float) -> SemaphoreGuard | None:
        timeout = check_timeout(seconds, "Semaphore.try_acquire_for", allow_none=False)
        return self._take("try_acquire_for", True, timeout)

    def available(self) -> int:
        self._rt.point("available", self)
        return self._permits


# --------------------------------------------------------------------------- atomics


class _Cell(_Modelled):
    __slots__ = ()
    _value: Any

    def _op(self, op: str) -> None:
        self._rt.point(op, self)

    def _note(self, result: Any) -> Any:
        if self._rt.tracing:
            self._rt.annotate(f"-> {result!r}")
        return result

    def load(self) -> Any:
        self._op("load")
        return self._note(self._value)

    def store(self, value: Any) -> None:
        self._op("store")
        self._value = value
        if self._rt.tracing:
            self._rt.annotate(repr(value))

    def swap(self, value: Any) -> Any:
        self._op("swap")
        old = self._value
        self._value = value
        return self._note(old)

    def _same(self, current: Any, expected: Any) -> bool:
        return bool(current == expected)

    def compare_exchange(self, expected: Any, new: Any) -> tuple[bool, Any]:
        self._op("compare_exchange")
        current = self._value
        if self._same(current, expected):
            self._value = new
            return self._note((True, current))
        return self._note((False, current))


class AtomicInt(_Cell, atomic.AtomicInt):
    __slots__ = ("_rt", "_value", "name")

    def __init__(self, value: int = 0, *, name: str | None = None) -> None:
        self._setup("AtomicInt", name)
        self._value = value

    def fetch_add(self, delta: int) -> int:
        self._op("fetch_add")
        old = self._value
        self._value = old + delta
        return self._note(old)

    def fetch_sub(self, delta: int) -> int:
        self._op("fetch_sub")
        old = self._value
        self._value = old - delta
        return self._note(old)


class AtomicBool(_Cell, atomic.AtomicBool):
    __slots__ = ("_rt", "_value", "name")

    def __init__(self, value: bool = False, *, name: str | None = None) -> None:
        self._setup("AtomicBool", name)
        self._value = value


class AtomicRef(_Cell, atomic.AtomicRef[Any]):
    __slots__ = ("_rt", "_value", "name")

    def __init__(self, obj: Any = None, *, name: str | None = None) -> None:
        self._setup("AtomicRef", name)
        self._value = obj

    def _same(self, current: Any, expected: Any) -> bool:
        return current is expected


# --------------------------------------------------------------------------- channels


class _Offer:
    """A message offered through a rendezvous; `taken` once a receiver has it."""

    __slots__ = ("taken", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.taken = False


class _Channel(_Modelled):
    __slots__ = ("_rt", "bound", "items", "name", "receiver_closed", "senders_open", "wakers")

    def __init__(self, bound: int | None, name: str | None) -> None:
        self._setup("channel", name)
        self.bound = bound
        self.items: deque[Any] = deque()
        self.senders_open = 1
        self.receiver_closed = False
        self.wakers: list[Callable[[], None]] = []

    def has_room(self) -> bool:
        bound = self.bound
        return bound is None or bound == 0 or len(self.items) < bound or self.receiver_closed

    def can_recv(self) -> bool:
        return bool(self.items) or not self.senders_open or self.receiver_closed

    def wake(self) -> None:
        for waker in list(self.wakers):
            waker()

    def _waits(self, waiter: Any) -> tuple[str, list[Any]]:
        """For a deadlock report: what a thread blocked on this channel waits for."""
        if waiter.op in ("recv", "recv_timeout"):
            return f"to receive on {self.name} (empty)", []
        if waiter.op == "send" and self.bound == 0:
            return f"for a receiver to take its message on {self.name}", []
        if waiter.op == "send":
            return f"to send on {self.name} (full: {len(self.items)} queued)", []
        return f"in {waiter.op} {self.name}", []


class Sender(sync.Sender[Any]):
    __slots__ = ("_channel", "_closed", "name")

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._closed = False
        self.name = channel.name

    def send(self, value: Any) -> None:
        channel = self._channel
        runtime = channel._rt
        if self._closed:  # this handle's own state: refused at once, as on real threads
            raise Disconnected(f"send on a closed Sender of {channel.name}")
        runtime.point("send", channel, self._may_send)
        if runtime.tracing:
            runtime.annotate(repr(value))
        self._check_open()
        if channel.bound != 0:
            channel.items.append(value)
            channel.wake()
            return
        offer = _Offer(value)  # a rendezvous: wait until a receiver took it
        channel.items.append(offer)
        channel.wake()

        def settled() -> bool:
            return offer.taken or self._closed or channel.receiver_closed

        runtime.point("send", channel, settled)
        if runtime.tracing:
            runtime.annotate("(taken)" if offer.taken else "(withdrawn)")
        if not offer.taken:  # withdrawn: nobody will receive it
            if offer in channel.items:
                channel.items.remove(offer)
            self._check_open()

    def _may_send(self) -> bool:
        """Room in the channel, or a reason to raise (this Sender or the receiver closed)."""
        return self._closed or self._channel.has_room()

    def _check_open(self) -> None:
        channel = self._channel
        if self._closed:
            raise Disconnected(f"send on a closed Sender of {channel.name}")
        if channel.receiver_closed:
            raise Disconnected(f"send on {channel.name}: its receiver is closed")

    def clone(self) -> Sender:
        if self._closed:
            raise Disconnected(f"clone of a closed Sender of {self._channel.name}")
        self._channel.senders_open += 1
        return Sender(self._channel)

    def close(self) -> None:
        if self._closed:
            return
        channel = self._channel
        channel._rt.point("close_sender", channel)
        self._closed = True
        channel.senders_open -= 1
        if not channel.senders_open:
            channel.wake()


class Receiver(sync.Receiver[Any]):
    __slots__ = ("_channel", "name")

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self.name = channel.name

    def _take(self) -> Any:
        channel = self._channel
        if channel.receiver_closed:
            raise Disconnected(f"recv on a closed Receiver of {channel.name}")
        if channel.items:
            value = channel.items.popleft()
            if channel.bound == 0:
                value.taken = True
                value = value.value
            if channel._rt.tracing:
                channel._rt.annotate(f"-> {value!r}")
            return value
        raise Disconnected(f"recv on {channel.name}: every sender is closed")

    def recv(self) -> Any:
        channel = self._channel
        channel._rt.point("recv", channel, channel.can_recv)
        return self._take()

    def try_recv(self) -> Any:
        channel = self._channel
        channel._rt.point("try_recv", channel)
        if not channel.can_recv():
            raise Empty(f"{channel.name} is empty")
        return self._take()

    def recv_timeout(self, seconds: float) -> Any:
        timeout = check_timeout(seconds, "Receiver.recv_timeout", allow_none=False)
        channel = self._channel
        runtime = channel._rt
        if not runtime.point("recv_timeout", channel, channel.can_recv, runtime.clock + timeout):
            raise TimeoutError(f"recv_timeout on {channel.name}: no message in time")
        return self._take()

    def close(self) -> None:
        channel = self._channel
        if channel.receiver_closed:
            return
        channel._rt.point("close_receiver", channel)
        channel.receiver_closed = True
        channel.items.clear()
        channel.wake()

    # Readiness protocol used by concurrency.lifecycle.wait_any.
    def _ready(self) -> bool:
        channel = self._channel
        channel._rt.point("poll", channel)
        return channel.can_recv()

    def _add_waker(self, waker: Callable[[], None]) -> None:
        self._channel.wakers.append(waker)

    def _remove_waker(self, waker: Callable[[], None]) -> None:
        try:
            self._channel.wakers.remove(waker)
        except ValueError:
            pass


def channel(bound: int | None, name: str | None) -> tuple[Sender, Receiver]:
    state = _Channel(bound, name)
    return Sender(state), Receiver(state)
