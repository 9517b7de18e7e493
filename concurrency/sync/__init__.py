"""Locks that own their data, with poisoning, and the primitives built beside them.

Every guard is a context manager: `with m.lock() as g: g.value += 1`. An
exception escaping a held `MutexGuard`, `WriteGuard` or `UpgradableReadGuard`
poisons the lock, and every later acquire raises `PoisonError` until
`clear_poison()` is called. The classes here are the facade: constructing one
builds the active backend's implementation (see `concurrency.backend()`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from .._errors import BrokenBarrierError, Disconnected, Empty, Panic, PoisonError
from .._facade import Facade
from ..backends import implementation

T = TypeVar("T")

__all__ = [
    "Barrier",
    "BarrierWaitResult",
    "BrokenBarrierError",
    "Condvar",
    "Disconnected",
    "Empty",
    "Mutex",
    "MutexGuard",
    "OnceLock",
    "Panic",
    "PoisonError",
    "ReadGuard",
    "Receiver",
    "RwLock",
    "Semaphore",
    "SemaphoreGuard",
    "Sender",
    "UpgradableReadGuard",
    "WriteGuard",
    "channel",
    "sync_channel",
]


class _Guard(Facade):
    """What every guard shares: early release and the context-manager protocol."""

    __slots__ = ()

    def unlock(self) -> None:
        """Release now; releasing a guard a second time raises `RuntimeError`."""
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError


class MutexGuard(_Guard, Generic[T]):
    """Exclusive access to a `Mutex`'s value; `value` reads and assigns it."""

    __slots__ = ()

    @property
    def value(self) -> T:
        raise NotImplementedError

    @value.setter
    def value(self, new: T) -> None:
        raise NotImplementedError

    def __enter__(self) -> MutexGuard[T]:
        return self


class Mutex(Facade, Generic[T]):
    """A mutual-exclusion lock that owns `value`; reach the value through a guard.

    `name` labels the lock in errors and model-checker traces.
    """

    __slots__ = ()
    _facade_ = True
    name: str

    def __init__(self, value: T | None = None, *, name: str | None = None) -> None:
        raise NotImplementedError

    def lock(self) -> MutexGuard[T]:
        """Block until the lock is free and return its guard."""
        raise NotImplementedError

    def try_lock(self) -> MutexGuard[T] | None:
        """The guard if the lock is free right now, else None."""
        raise NotImplementedError

    def try_lock_for(self, seconds: float) -> MutexGuard[T] | None:
        """The guard if the lock frees up within `seconds`, else None."""
        raise NotImplementedError

    def is_locked(self) -> bool:
        """Whether some guard holds the lock (a snapshot, for diagnostics)."""
        raise NotImplementedError

    def is_poisoned(self) -> bool:
        """Whether an exception escaped a guard of this lock."""
        raise NotImplementedError

    def clear_poison(self) -> None:
        """Declare the value consistent again so the lock can be acquired."""
        raise NotImplementedError


class ReadGuard(_Guard, Generic[T]):
    """Shared access to an `RwLock`'s value; `value` is read-only."""

    __slots__ = ()

    @property
    def value(self) -> T:
        raise NotImplementedError

    def __enter__(self) -> ReadGuard[T]:
        return self


class WriteGuard(_Guard, Generic[T]):
    """Exclusive access to an `RwLock`'s value; `value` reads and assigns it."""

    __slots__ = ()

    @property
    def value(self) -> T:
        raise NotImplementedError

    @value.setter
    def value(self, new: T) -> None:
        raise NotImplementedError

    def downgrade(self) -> ReadGuard[T]:
        """Atomically turn this write guard into a read guard (no writer gets in between)."""
        raise NotImplementedError

    def __enter__(self) -> WriteGuard[T]:
        return self


class UpgradableReadGuard(_Guard, Generic[T]):
    """A read guard that may become a writer; at most one exists per lock."""

    __slots__ = ()

    @property
    def value(self) -> T:
        raise NotImplementedError

    def upgrade(self) -> WriteGuard[T]:
        """Wait for plain readers to leave, then become the writer, atomically.

        This guard is consumed: the returned write guard is what releases the lock.
        """
        raise NotImplementedError

    def __enter__(self) -> UpgradableReadGuard[T]:
        return self


class RwLock(Facade, Generic[T]):
    """A readers-writer lock that owns `value`, with upgradable reads.

    A waiting writer is not starved: once a writer waits, new readers queue behind it.
    """

    __slots__ = ()
    _facade_ = True
    name: str

    def __init__(self, value: T | None = None, *, name: str | None = None) -> None:
        raise NotImplementedError

    def read(self) -> ReadGuard[T]:
        raise NotImplementedError

    def write(self) -> WriteGuard[T]:
        raise NotImplementedError

    def upgradable_read(self) -> UpgradableReadGuard[T]:
        raise NotImplementedError

    def try_read(self) -> ReadGuard[T] | None:
        raise NotImplementedError

    def try_write(self) -> WriteGuard[T] | None:
        raise NotImplementedError

    def try_upgradable_read(self) -> UpgradableReadGuard[T] | None:
        raise NotImplementedError

    def try_read_for(self, seconds: float) -> ReadGuard[T] | None:
        raise NotImplementedError

    def try_write_for(self, seconds: float) -> WriteGuard[T] | None:
        raise NotImplementedError

    def is_poisoned(self) -> bool:
        raise NotImplementedError

    def clear_poison(self) -> None:
        raise NotImplementedError


class Condvar(Facade):
    """A condition variable used with the guard of one `Mutex`.

    `wait` may wake spuriously: prefer `wait_while`, which re-checks for you.
    """

    __slots__ = ()
    _facade_ = True

    def __init__(self, *, name: str | None = None) -> None:
        raise NotImplementedError

    def wait(self, guard: MutexGuard[Any]) -> None:
        """Release the guard's lock, sleep until notified, re-acquire."""
        raise NotImplementedError

    def wait_while(self, guard: MutexGuard[T], predicate: Callable[[T], bool]) -> None:
        """Wait until `predicate(guard.value)` is false."""
        raise NotImplementedError

    def wait_timeout(self, guard: MutexGuard[Any], seconds: float) -> bool:
        """Like `wait` but for at most `seconds`; True when it timed out."""
        raise NotImplementedError

    def wait_timeout_while(
        self, guard: MutexGuard[T], seconds: float, predicate: Callable[[T], bool]
    ) -> bool:
        """Wait while `predicate(guard.value)` holds, at most `seconds`; True on timeout."""
        raise NotImplementedError

    def notify_one(self) -> None:
        raise NotImplementedError

    def notify_all(self) -> None:
        raise NotImplementedError


class OnceLock(Facade, Generic[T]):
    """A cell written at most once; `get_or_init` runs exactly one initializer."""

    __slots__ = ()
    _facade_ = True

    def __init__(self, *, name: str | None = None) -> None:
        raise NotImplementedError

    def get(self) -> T | None:
        """The value, or None while empty; never blocks."""
        raise NotImplementedError

    def set(self, value: T) -> bool:
        """Store `value` if the cell is empty; True when this call stored it."""
        raise NotImplementedError

    def get_or_init(self, fn: Callable[[], T]) -> T:
        """The value, running `fn` to create it if empty.

        Exactly one `fn` runs at a time; if it raises, the cell stays empty and the
        exception propagates, and a waiting caller takes its turn to initialize.
        """
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class BarrierWaitResult:
    """What `Barrier.wait` returns; exactly one waiter per round is the leader."""

    is_leader: bool


class Barrier(Facade):
    """Blocks `parties` threads until all of them have called `wait`."""

    __slots__ = ()
    _facade_ = True
    parties: int

    def __init__(self, parties: int, *, name: str | None = None) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> BarrierWaitResult:
        """Wait for the round to fill; a timeout breaks the barrier for everyone."""
        raise NotImplementedError

    def abort(self) -> None:
        """Break the barrier: current and future waiters raise `BrokenBarrierError`."""
        raise NotImplementedError

    def reset(self) -> None:
        """Return to the empty state; current waiters raise `BrokenBarrierError`."""
        raise NotImplementedError

    @property
    def broken(self) -> bool:
        raise NotImplementedError

    @property
    def n_waiting(self) -> int:
        raise NotImplementedError


class SemaphoreGuard(_Guard):
    """One permit of a `Semaphore`, given back on release."""

    __slots__ = ()

    def __enter__(self) -> SemaphoreGuard:
        return self


class Semaphore(Facade):
    """A pool of `permits`; each guard holds one until it is released."""

    __slots__ = ()
    _facade_ = True

    def __init__(self, permits: int, *, name: str | None = None) -> None:
        raise NotImplementedError

    def acquire(self) -> SemaphoreGuard:
        raise NotImplementedError

    def try_acquire(self) -> SemaphoreGuard | None:
        raise NotImplementedError

    def try_acquire_for(self, seconds: float) -> SemaphoreGuard | None:
        raise NotImplementedError

    def available(self) -> int:
        """Permits free right now (a snapshot)."""
        raise NotImplementedError


class Sender(Facade, Generic[T]):
    """The sending end of a channel; `clone()` for another producer, `close()` when done."""

    __slots__ = ()

    def send(self, value: T) -> None:
        raise NotImplementedError

    def clone(self) -> Sender[T]:
        raise NotImplementedError

    def close(self) -> None:
        """Close this handle (idempotent); receivers disconnect once every sender closed."""
        raise NotImplementedError

    def __enter__(self) -> Sender[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Receiver(Facade, Generic[T]):
    """The receiving end of a channel; iterate it to drain until disconnected."""

    __slots__ = ()

    def recv(self) -> T:
        raise NotImplementedError

    def try_recv(self) -> T:
        raise NotImplementedError

    def recv_timeout(self, seconds: float) -> T:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                yield self.recv()
            except Disconnected:
                return

    def __enter__(self) -> Receiver[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def channel(*, name: str | None = None) -> tuple[Sender[Any], Receiver[Any]]:
    """An unbounded multi-producer channel."""
    result: tuple[Sender[Any], Receiver[Any]] = implementation().channel(None, name)
    return result


def sync_channel(bound: int, *, name: str | None = None) -> tuple[Sender[Any], Receiver[Any]]:
    """A channel holding at most `bound` messages; `bound=0` is a rendezvous."""
    if isinstance(bound, bool) or not isinstance(bound, int):
        raise TypeError(f"sync_channel: bound must be an int, got {bound!r}")
    if bound < 0:
        raise ValueError(f"sync_channel: bound must be >= 0, got {bound}")
    result: tuple[Sender[Any], Receiver[Any]] = implementation().channel(bound, name)
    return result
