"""What the pure-Python primitives share: names, deadlines and `WaitQueue`.

Every primitive keeps its state behind one raw lock (`allocate_lock()`, a
`threading.Lock`) and parks threads on a `WaitQueue`, the way CPython's
`threading.Condition` does, so it is correct with or without the GIL.

Asynchronous exceptions (Ctrl-C in the main thread, `PyThreadState_SetAsyncExc`)
are handled on a best-effort basis: a wait that is interrupted takes its raw
lock back and withdraws its registration before the exception propagates, and
a wakeup it had already received is passed on. Guards are created before and
attached inside the critical section that takes a lock, so one that an
exception cuts off from its caller is released when dropped. What pure Python
cannot guard against: an exception landing just after the last C call of an
operation that returns a value (a received message is then lost), and one
landing inside a guard's `__del__`, which CPython reports as unraisable
instead of raising it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import Any, NoReturn

from .. import refuse_in_model_execution

allocate_lock = threading.Lock
get_ident = threading.get_ident
monotonic = time.monotonic

_serial = itertools.count(1)
_serial_lock = allocate_lock()


def next_name(kind: str) -> str:
    """A process-unique label such as `Mutex#7` for objects created without a name."""
    with _serial_lock:
        serial = next(_serial)
    return f"{kind}#{serial}"


def released(kind: str) -> NoReturn:
    raise RuntimeError(f"this {kind} was already released; it cannot be used any more")


def deadline_after(seconds: float | None) -> float | None:
    """The `monotonic()` instant `seconds` from now (None: no deadline)."""
    return None if seconds is None else monotonic() + seconds


def remaining(deadline: float | None) -> float | None:
    """Seconds left until `deadline` (0.0 once passed; None: no deadline)."""
    return None if deadline is None else max(0.0, deadline - monotonic())


def reacquire(lock: Any) -> None:
    """Take `lock` back after a wait, even when an interrupt cuts the attempt short.

    The attempt is repeated until the lock is held, then the interrupt is raised,
    so the caller's `with lock:` releases exactly what it holds.
    """
    interrupt: BaseException | None = None
    while True:
        try:
            lock.acquire()
            break
        except BaseException as exc:  # interrupted before the lock was taken
            interrupt = exc
    if interrupt is not None:
        raise interrupt


def park(waiter: Any, timeout: float | None) -> bool:
    """Block on the locked raw lock `waiter` until released or `timeout`; True if released."""
    refuse_in_model_execution()  # model threads share this OS thread: blocking stops them all
    if timeout is None:
        return bool(waiter.acquire())
    return bool(waiter.acquire(True, timeout))


class WaitQueue:
    """Threads parked until notified; the caller's raw lock guards the queue.

    Like `threading.Condition`: each waiter parks on a fresh raw lock that a
    notifier releases. Every user re-checks its condition in a loop, so a
    waiter that gives up after being chosen hands the wakeup to the next one.
    """

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: deque[Any] = deque()  # parked threads' locks, oldest first

    def __bool__(self) -> bool:
        return bool(self.waiters)

    def __len__(self) -> int:
        return len(self.waiters)

    def add(self) -> Any:
        """Queue a new waiter (a locked raw lock) and return it; caller holds the lock."""
        waiter = allocate_lock()
        waiter.acquire()
        self.waiters.append(waiter)
        return waiter

    def withdraw(self, waiter: Any) -> bool:
        """Take `waiter` off the queue; False when a notify already chose it (lock held)."""
        try:
            self.waiters.remove(waiter)
        except ValueError:
            return False
        return True

    def leave(self, waiter: Any) -> None:
        """An interrupted `waiter` leaves; a wakeup it already got goes to the next one."""
        if not self.withdraw(waiter):
            self.notify(1)

    def wait(self, lock: Any, timeout: float | None = None) -> bool:
        """Release `lock` (held by the caller), park, take it back; True if notified.

        Interrupted, it still returns holding `lock`, off the queue, and re-raises.
        """
        waiter = self.add()
        lock.release()
        notified = False
        interrupt: BaseException | None = None
        try:
            notified = park(waiter, timeout)
        except BaseException as exc:
            interrupt = exc
        try:
            reacquire(lock)
        except BaseException as exc:  # held again, but interrupted on the way
            interrupt = exc
        if interrupt is not None:
            self.leave(waiter)
            raise interrupt
        return notified or not self.withdraw(waiter)

    def notify(self, n: int = 1) -> None:
        """Wake up to `n` parked threads (caller holds the lock)."""
        waiters = self.waiters
        while waiters and n > 0:
            waiters.popleft().release()
            n -= 1

    def notify_all(self) -> None:
        self.notify(len(self.waiters))


# --------------------------------------------------------------------------- checked variants


def thread_name(ident: int | None) -> str:
    """The name of the live thread `ident`, for error messages."""
    for candidate in threading.enumerate():
        if candidate.ident == ident:
            return candidate.name
    return f"thread {ident}"


def refuse_not_owner(action: str, lock_name: str, owner: int) -> NoReturn:
    """Raise the error for `action` on a guard by a thread other than `owner`, its acquirer.

    Shared by the checked guards written in Python and the C `CheckedMutexGuard`.
    """
    raise RuntimeError(
        f"{action} a guard of {lock_name} from {threading.current_thread().name}, but "
        f"it was acquired by {thread_name(owner)}: only the owner may release it"
    )


class Owned:
    """Mixin for checked guards: remembers the acquiring thread and refuses others."""

    __slots__ = ()
    _owner: int

    def _check_owner(self, action: str, lock_name: str) -> None:
        if get_ident() != self._owner:
            refuse_not_owner(action, lock_name, self._owner)


def current_thread_name() -> str:
    return threading.current_thread().name


def refuse_copy(self: Any) -> NoReturn:
    """`__reduce__` of guards and channel ends: a copy would be a second handle on one hold.

    The native core's classes refuse the same way (they cannot be pickled, so
    `copy.copy` fails too): a copied guard could release another holder's lock.
    """
    raise TypeError(f"cannot copy or pickle a {type(self).__name__}: it stands for a lock "
                    "hold or a channel end, which exist once")
