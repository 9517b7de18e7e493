"""Primitives shared by the two real-thread backends, `fast` and `threading`.

Everything blocks by parking on a `_thread` lock (a futex or semaphore in the
kernel), never by polling. State is guarded by one raw lock per object and
`WaitQueue` plays the role of `threading.Condition` without its overhead.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .. import sync, thread
from .._errors import (
    BrokenBarrierError,
    Disconnected,
    Empty,
    check_timeout,
    raise_poisoned,
    report_unraisable,
)
from ..sync import atomic

allocate_lock = threading.Lock


def _warn_if_gil_disabled() -> None:
    """The lock-free fast paths (RwLock, channels) rely on the GIL's sequential consistency.

    On a free-threaded build running without the GIL they are not yet safe: say so
    loudly rather than corrupt silently. (Importing the C accelerator, which does not
    declare itself free-threading safe, turns the GIL back on.)
    """
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    if is_gil_enabled is not None and not is_gil_enabled():
        import warnings

        warnings.warn(
            "concurrency: the GIL is disabled; the real-thread RwLock and channel fast paths "
            "assume it and are not yet safe on free-threaded builds (run with PYTHON_GIL=1)",
            RuntimeWarning,
            stacklevel=3,
        )


_warn_if_gil_disabled()
get_ident = threading.get_ident
monotonic = time.monotonic

_serial = itertools.count(1)
_thread_serial = itertools.count(1)


def next_name(kind: str) -> str:
    """A process-unique label such as `Mutex#7` for objects created without a name."""
    return f"{kind}#{next(_serial)}"


class WaitQueue:
    """Threads parked until notified, guarded by the caller's raw lock."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: deque[Any] = deque()

    def __bool__(self) -> bool:
        return bool(self._waiters)

    def __len__(self) -> int:
        return len(self._waiters)

    def wait(self, lock: Any, timeout: float | None = None) -> bool:
        """Release `lock` (held by the caller), park, re-acquire; True if notified."""
        waiter = allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        lock.release()
        notified = False
        try:
            if timeout is None:
                notified = waiter.acquire()
            elif timeout > 0:
                notified = waiter.acquire(True, timeout)
            else:
                notified = waiter.acquire(False)
        finally:
            lock.acquire()
            if not notified:
                try:
                    self._waiters.remove(waiter)
                except ValueError:  # a notify picked this waiter as we timed out
                    notified = True
        return notified

    def notify(self, n: int = 1) -> None:
        """Wake up to `n` parked threads (caller holds the lock)."""
        waiters = self._waiters
        while waiters and n > 0:
            waiters.popleft().release()
            n -= 1

    def notify_all(self) -> None:
        self.notify(len(self._waiters))


def deadline_after(seconds: float | None) -> float | None:
    return None if seconds is None else monotonic() + seconds


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - monotonic())


# --------------------------------------------------------------------------- Condvar


class Condvar(sync.Condvar):
    """Condition variable for real threads; it binds to the first Mutex it is used with."""

    __slots__ = ("_lock", "_mutex", "_queue", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self._lock = allocate_lock()
        self._queue = WaitQueue()
        self._mutex: Any = None
        self.name = name or next_name("Condvar")

    def _bind(self, guard: Any) -> None:
        if not isinstance(guard, sync.MutexGuard):
            raise TypeError(f"{self.name}.wait needs a MutexGuard, got {type(guard).__name__}")
        mutex = guard._mutex_for_wait(self)  # type: ignore[attr-defined]  # backend guards
        if self._mutex is None:
            self._mutex = mutex
        elif self._mutex is not mutex:
            raise RuntimeError(
                f"{self.name} was used with {self._mutex.name} and now with {mutex.name}; "
                "a Condvar must always be used with the same Mutex"
            )

    def _wait(self, guard: Any, timeout: float | None) -> bool:
        """Park until notified or `timeout`; True if notified."""
        self._bind(guard)
        waiter = allocate_lock()
        waiter.acquire()
        with self._lock:
            self._queue._waiters.append(waiter)
        guard._park()
        notified = False
        try:
            if timeout is None:
                notified = waiter.acquire()
            elif timeout > 0:
                notified = waiter.acquire(True, timeout)
            else:
                notified = waiter.acquire(False)
        finally:
            if not notified:
                with self._lock:
                    try:
                        self._queue._waiters.remove(waiter)
                    except ValueError:
                        notified = True
            guard._unpark()
        return notified

    def wait(self, guard: Any) -> None:
        self._wait(guard, None)

    def wait_while(self, guard: Any, predicate: Callable[[Any], bool]) -> None:
        while predicate(guard.value):
            self._wait(guard, None)

    def wait_timeout(self, guard: Any, seconds: float) -> bool:
        timeout = check_timeout(seconds, "Condvar.wait_timeout", allow_none=False)
        return not self._wait(guard, timeout)

    def wait_timeout_while(
        self, guard: Any, seconds: float, predicate: Callable[[Any], bool]
    ) -> bool:
        timeout = check_timeout(seconds, "Condvar.wait_timeout_while", allow_none=False)
        deadline = deadline_after(timeout)
        while predicate(guard.value):
            left = remaining(deadline)
            if left == 0.0:
                return True
            self._wait(guard, left)
        return False

    def notify_one(self) -> None:
        if self._queue:
            with self._lock:
                self._queue.notify(1)

    def notify_all(self) -> None:
        if self._queue:
            with self._lock:
                self._queue.notify_all()


# --------------------------------------------------------------------------- OnceLock

_UNSET: Any = object()


class OnceLock(sync.OnceLock[Any]):
    """A write-once cell; concurrent `get_or_init` callers wait for the one initializer."""

    __slots__ = ("_initializer", "_lock", "_queue", "_value", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self._value = _UNSET
        self._initializer: int | None = None
        self._lock = allocate_lock()
        self._queue = WaitQueue()
        self.name = name or next_name("OnceLock")

    def get(self) -> Any:
        value = self._value
        return None if value is _UNSET else value

    def set(self, value: Any) -> bool:
        with self._lock:
            while self._initializer is not None and self._value is _UNSET:
                self._check_not_reentrant("set")
                self._queue.wait(self._lock)
            if self._value is not _UNSET:
                return False
            self._value = value
            self._queue.notify_all()
            return True

    def _check_not_reentrant(self, what: str) -> None:
        if self._initializer == get_ident():
            raise RuntimeError(
                f"{self.name}.{what}() called from inside its own initializer: it would deadlock"
            )

    def get_or_init(self, fn: Callable[[], Any]) -> Any:
        value = self._value
        if value is not _UNSET:
            return value
        with self._lock:
            while True:
                if self._value is not _UNSET:
                    return self._value
                if self._initializer is None:
                    self._initializer = get_ident()
                    break
                self._check_not_reentrant("get_or_init")
                self._queue.wait(self._lock)
        try:
            value = fn()
        except BaseException:
            with self._lock:
                self._initializer = None
                self._queue.notify(1)  # the next waiter takes its turn to initialize
            raise
        with self._lock:
            self._value = value
            self._initializer = None
            self._queue.notify_all()
        return value


# --------------------------------------------------------------------------- Barrier


class _Round:
    __slots__ = ("arrived", "broken", "done")

    def __init__(self) -> None:
        self.arrived = 0
        self.done = False
        self.broken = False


class Barrier(sync.Barrier):
    """A reusable barrier; each round's last arrival is its leader."""

    __slots__ = ("_broken", "_lock", "_queue", "_round", "name", "parties")

    def __init__(self, parties: int, *, name: str | None = None) -> None:
        if isinstance(parties, bool) or not isinstance(parties, int) or parties < 1:
            raise ValueError(f"Barrier: parties must be an int >= 1, got {parties!r}")
        self.parties = parties
        self.name = name or next_name("Barrier")
        self._lock = allocate_lock()
        self._queue = WaitQueue()
        self._round = _Round()
        self._broken = False

    def wait(self, timeout: float | None = None) -> sync.BarrierWaitResult:
        deadline = deadline_after(check_timeout(timeout, "Barrier.wait"))
        with self._lock:
            if self._broken:
                raise BrokenBarrierError(f"{self.name} is broken")
            current = self._round
            current.arrived += 1
            if current.arrived == self.parties:
                current.done = True
                self._round = _Round()
                self._queue.notify_all()
                return sync.BarrierWaitResult(is_leader=True)
            try:
                while not (current.done or current.broken):
                    if not self._queue.wait(self._lock, remaining(deadline)) and not (
                        current.done or current.broken
                    ):
                        self._break(current)
            except BaseException:  # interrupted: the others must not pass one short
                self._break(current)
                raise
            if current.broken:
                raise BrokenBarrierError(f"{self.name} was broken while waiting")
            return sync.BarrierWaitResult(is_leader=False)

    def _break(self, current: _Round) -> None:
        current.broken = True
        self._broken = True
        if current is self._round:  # its waiters are leaving: n_waiting drops to 0
            self._round = _Round()
        self._queue.notify_all()

    def abort(self) -> None:
        with self._lock:
            self._break(self._round)

    def reset(self) -> None:
        with self._lock:
            if self._round.arrived:
                self._round.broken = True
                self._queue.notify_all()
            self._round = _Round()
            self._broken = False

    @property
    def broken(self) -> bool:
        return self._broken

    @property
    def n_waiting(self) -> int:
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
        self._semaphore = None
        semaphore._give_back()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._semaphore is not None:
            self.unlock()


class Semaphore(sync.Semaphore):
    __slots__ = ("_lock", "_permits", "_queue", "name")

    def __init__(self, permits: int, *, name: str | None = None) -> None:
        if isinstance(permits, bool) or not isinstance(permits, int) or permits < 0:
            raise ValueError(f"Semaphore: permits must be an int >= 0, got {permits!r}")
        self._permits = permits
        self._lock = allocate_lock()
        self._queue = WaitQueue()
        self.name = name or next_name("Semaphore")

    def _take(self, deadline: float | None, blocking: bool) -> SemaphoreGuard | None:
        with self._lock:
            while self._permits == 0:
                if not blocking or (deadline is not None and remaining(deadline) == 0.0):
                    return None
                self._queue.wait(self._lock, remaining(deadline))
            self._permits -= 1
            return SemaphoreGuard(self)

    def _give_back(self) -> None:
        with self._lock:
            self._permits += 1
            self._queue.notify(1)

    def acquire(self) -> SemaphoreGuard:
        guard = self._take(None, True)
        assert guard is not None
        return guard

    def try_acquire(self) -> SemaphoreGuard | None:
        return self._take(None, False)

    def try_acquire_for(self, seconds: float) -> SemaphoreGuard | None:
        timeout = check_timeout(seconds, "Semaphore.try_acquire_for", allow_none=False)
        return self._take(deadline_after(timeout), True)

    def available(self) -> int:
        return self._permits


# --------------------------------------------------------------------------- atomics


class _LockedCell:
    """Shared body of the atomics: a value whose writes serialize on one raw lock."""

    __slots__ = ()
    _value: Any
    _lock: Any

    def load(self) -> Any:
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
        return f"<{type(self).__name__} {self.name}={self._value!r}>"  # type: ignore[attr-defined]


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


# --------------------------------------------------------------------------- channels
#
# How messages pass without taking the channel's lock (CPython with the GIL).
#
# Unbounded and bounded (bound > 0) channels send and receive with operations the
# GIL makes atomic and sequentially consistent -- deque append/popleft, list
# pop/append, attribute loads -- and take `lock` only to park or to wake a parked
# thread (a free-threaded build, PEP 703, would need `lock` on these paths too).
# A bounded channel keeps one item in `slots` per free place: a sender takes one
# before it appends a message, a receiver gives one back after it takes one.
#
# A thread about to park raises `recv_waiting` (or `send_waiting`) under `lock`, then
# checks again; the other side changes the state first, then reads the counter and,
# if it is non-zero, wakes a parked thread under `lock`: one of the two always sees
# the other, so no wakeup is lost. `wait_any` callers register in `wakers` the same way.
# The counters count parked threads not yet woken (the waker counts a thread out as it
# wakes it), so a busy channel does not take `lock` to wake threads already woken.
#
# A rendezvous (bound 0) does everything under `lock`: its `slots` stay empty and its
# `fast_pop` always fails, which sends both ends to their slow paths.


def _nothing_to_pop() -> Any:
    raise IndexError("no message")


class _Channel:
    """State shared by the ends of one channel (bound None: unbounded; 0: rendezvous)."""

    __slots__ = (
        "bound",
        "fast_pop",
        "give_slot",
        "items",
        "lock",
        "name",
        "push",
        "receiver_closed",
        "receivers",
        "recv_waiting",
        "send_waiting",
        "senders",
        "senders_open",
        "sent",
        "take_slot",
        "taken",
        "wakers",
    )

    def __init__(self, bound: int | None, name: str) -> None:
        self.bound = bound
        self.name = name
        self.items: deque[Any] = deque()
        self.push = self.items.append
        # Receivers pop lock-free with this; a rendezvous and a closed receiver never do.
        self.fast_pop: Callable[[], Any] = _nothing_to_pop if bound == 0 else self.items.popleft
        slots: list[None] | None = None if bound is None else [None] * bound
        self.take_slot: Callable[[], Any] | None = None if slots is None else slots.pop
        self.give_slot: Callable[[None], None] | None = None if slots is None else slots.append
        self.lock = allocate_lock()
        self.receivers = WaitQueue()  # threads waiting for a message
        self.senders = WaitQueue()  # threads waiting for room, or for a rendezvous
        self.recv_waiting = 0  # threads parked in `receivers` and not yet woken
        self.send_waiting = 0  # threads parked in `senders` for room and not yet woken
        self.senders_open = 1
        self.receiver_closed = False
        self.sent = 0  # rendezvous tickets handed out
        self.taken = 0  # rendezvous messages received so far
        self.wakers: tuple[Callable[[], None], ...] = ()  # wait_any callers (see _wake)


def _wake(channel: _Channel) -> None:
    """Tell `wait_any` callers the receiver may be ready (with or without `channel.lock`).

    The readiness protocol of `concurrency.lifecycle.wait_any`: a waker only
    takes its caller's own mutex to notify it, so calling it under our lock is safe.
    """
    for waker in channel.wakers:
        waker()


def _wake_receiver(channel: _Channel) -> None:
    with channel.lock:
        _wake_receiver_locked(channel)


def _wake_receiver_locked(channel: _Channel) -> None:
    if channel.recv_waiting:
        channel.recv_waiting -= 1
        channel.receivers.notify(1)


def _wake_sender(channel: _Channel) -> None:
    with channel.lock:
        _wake_sender_locked(channel)


def _wake_sender_locked(channel: _Channel) -> None:
    if channel.send_waiting:
        channel.send_waiting -= 1
        channel.senders.notify(1)


def _wake_everyone_locked(channel: _Channel) -> None:
    """The channel disconnected: every parked thread wakes up to see it."""
    channel.receivers.notify_all()
    channel.recv_waiting = 0
    channel.senders.notify_all()
    channel.send_waiting = 0
    _wake(channel)


class Sender(sync.Sender[Any]):
    __slots__ = ("_channel", "_closed")

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._closed = False

    def send(self, value: Any) -> None:
        channel = self._channel
        if self._closed or channel.receiver_closed:
            self._refuse(channel)
        take_slot = channel.take_slot
        if take_slot is not None:  # bounded: reserve a place first
            try:
                take_slot()
            except IndexError:  # full, or a rendezvous
                self._send_contended(channel, value, take_slot)
                return
        channel.push(value)
        if channel.recv_waiting:
            _wake_receiver(channel)
        if channel.wakers:
            _wake(channel)

    def _refuse(self, channel: _Channel) -> None:
        if self._closed:
            raise Disconnected(f"send on a closed Sender of {channel.name}")
        raise Disconnected(f"send on {channel.name}: its receiver is closed")

    def _send_contended(self, channel: _Channel, value: Any,
                        take_slot: Callable[[], Any]) -> None:
        """Wait for room in a full bounded channel, or hand over through a rendezvous."""
        with channel.lock:
            if channel.bound == 0:
                self._rendezvous(channel, value)
                return
            while True:
                if channel.receiver_closed:
                    raise Disconnected(f"send on {channel.name}: its receiver closed")
                try:
                    take_slot()
                    break
                except IndexError:
                    pass
                channel.send_waiting += 1  # then check once more: see the comment above
                try:
                    take_slot()
                except IndexError:
                    channel.senders.wait(channel.lock)  # the waker counts us out
                else:
                    channel.send_waiting -= 1
                    break
            channel.push(value)
            _wake_receiver_locked(channel)
            if channel.wakers:
                _wake(channel)

    @staticmethod
    def _rendezvous(channel: _Channel, value: Any) -> None:
        """Hand `value` over and wait until a receiver has taken it (`channel.lock` held)."""
        if channel.receiver_closed:
            raise Disconnected(f"send on {channel.name}: its receiver is closed")
        channel.push(value)
        channel.sent += 1
        ticket = channel.sent
        _wake_receiver_locked(channel)
        if channel.wakers:
            _wake(channel)
        while channel.taken < ticket:
            if channel.receiver_closed:
                raise Disconnected(f"send on {channel.name}: its receiver closed")
            channel.senders.wait(channel.lock)

    def clone(self) -> Sender:
        channel = self._channel
        with channel.lock:
            if self._closed:
                raise Disconnected(f"clone of a closed Sender of {channel.name}")
            channel.senders_open += 1
        return Sender(channel)

    def close(self) -> None:
        channel = self._channel
        with channel.lock:
            if self._closed:
                return
            self._closed = True
            channel.senders_open -= 1
            if channel.senders_open == 0:
                _wake_everyone_locked(channel)


class Receiver(sync.Receiver[Any]):
    __slots__ = ("_channel",)

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def recv(self) -> Any:
        channel = self._channel
        try:
            value = channel.fast_pop()
        except IndexError:
            return self._take(None, True)
        give_slot = channel.give_slot
        if give_slot is not None:  # bounded: the place is free again
            give_slot(None)
            if channel.send_waiting:
                _wake_sender(channel)
        return value

    def try_recv(self) -> Any:
        channel = self._channel
        try:
            value = channel.fast_pop()
        except IndexError:
            return self._take(None, False)
        give_slot = channel.give_slot
        if give_slot is not None:
            give_slot(None)
            if channel.send_waiting:
                _wake_sender(channel)
        return value

    def recv_timeout(self, seconds: float) -> Any:
        timeout = check_timeout(seconds, "Receiver.recv_timeout", allow_none=False)
        return self._take(deadline_after(timeout), True)

    def _take(self, deadline: float | None, blocking: bool) -> Any:
        """Receive under `channel.lock`, parking until a message, a disconnect or `deadline`."""
        channel = self._channel
        with channel.lock:
            while True:
                if channel.receiver_closed:
                    raise Disconnected(f"recv on a closed Receiver of {channel.name}")
                try:
                    value = channel.items.popleft()
                except IndexError:
                    pass
                else:
                    self._took_locked(channel)
                    return value
                # A sender closes after its last send, so nothing more can arrive.
                if channel.senders_open == 0:
                    raise Disconnected(f"recv on {channel.name}: every sender is closed")
                if not blocking:
                    raise Empty(f"{channel.name} is empty")
                left = remaining(deadline)
                if left == 0.0:
                    raise TimeoutError(f"recv_timeout on {channel.name}: no message in time")
                channel.recv_waiting += 1  # then check once more: see the comment above
                if channel.items:
                    channel.recv_waiting -= 1
                elif not channel.receivers.wait(channel.lock, left):
                    channel.recv_waiting -= 1  # timed out: no waker counted us out

    @staticmethod
    def _took_locked(channel: _Channel) -> None:
        """A message left the channel: free its place, or release its rendezvous sender."""
        if channel.bound == 0:
            channel.taken += 1
            channel.senders.notify_all()  # each waits for its own ticket
        elif channel.give_slot is not None:
            channel.give_slot(None)
            _wake_sender_locked(channel)

    def close(self) -> None:
        channel = self._channel
        with channel.lock:
            if channel.receiver_closed:
                return
            channel.receiver_closed = True
            channel.fast_pop = _nothing_to_pop  # a send racing with close is never received
            channel.items.clear()
            _wake_everyone_locked(channel)

    # The readiness protocol of `concurrency.lifecycle.wait_any`.
    def _ready(self) -> bool:
        """Would `recv` return at once (a message waits, or it is disconnected)? Lock-free."""
        channel = self._channel
        return bool(channel.items) or channel.senders_open == 0 or channel.receiver_closed

    def _add_waker(self, waker: Callable[[], None]) -> None:
        channel = self._channel
        with channel.lock:
            channel.wakers = (*channel.wakers, waker)

    def _remove_waker(self, waker: Callable[[], None]) -> None:
        channel = self._channel
        with channel.lock:
            channel.wakers = tuple(w for w in channel.wakers if w is not waker)


def channel(bound: int | None, name: str | None) -> tuple[Sender, Receiver]:
    state = _Channel(bound, name or next_name("channel"))
    return Sender(state), Receiver(state)


# --------------------------------------------------------------------------- threads


class JoinHandle(thread.JoinHandle[Any]):
    """An OS thread running `fn`; its outcome is kept for `join`."""

    __slots__ = ("_error", "_joined", "_result", "_thread", "name")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 name: str | None) -> None:
        self._result: Any = None
        self._error: BaseException | None = None
        self._joined = False
        if name is None:
            name = f"{getattr(fn, '__name__', 'thread')}-{next(_thread_serial)}"
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), name=name)
        self.name = self._thread.name

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            self._result = fn(*args, **kwargs)
        except BaseException as exc:
            self._error = exc

    def join(self, timeout: float | None = None) -> Any:
        timeout = check_timeout(timeout, "JoinHandle.join")
        if self._thread is threading.current_thread():
            raise RuntimeError(f"thread {self.name} cannot join itself")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"thread {self.name} still running after {timeout}s")
        self._joined = True
        if self._error is not None:
            raise self._error
        return self._result

    def is_finished(self) -> bool:
        return not self._thread.is_alive()

    def __repr__(self) -> str:
        state = "finished" if self.is_finished() else "running"
        return f"<JoinHandle {self.name} {state}>"

    def __del__(self) -> None:
        if self._error is not None and not self._joined:
            report_unraisable(
                self._error, f"Exception in thread {self.name}, which was never joined"
            )


def spawn(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
          name: str | None) -> JoinHandle:
    if not callable(fn):
        raise TypeError(f"spawn: {fn!r} is not callable")
    handle = JoinHandle(fn, args, kwargs, name)
    handle._thread.start()
    return handle


def current() -> threading.Thread:
    return threading.current_thread()


def yield_now() -> None:
    time.sleep(0)


def sleep(seconds: float) -> None:
    time.sleep(check_timeout(seconds, "thread.sleep", allow_none=False) or 0.0)


__all__ = [
    "AtomicBool",
    "AtomicInt",
    "AtomicRef",
    "Barrier",
    "Condvar",
    "JoinHandle",
    "OnceLock",
    "Receiver",
    "Semaphore",
    "SemaphoreGuard",
    "Sender",
    "WaitQueue",
    "channel",
    "current",
    "next_name",
    "raise_poisoned",
    "sleep",
    "spawn",
    "yield_now",
]
