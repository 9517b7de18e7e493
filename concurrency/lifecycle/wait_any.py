"""`wait_any`: park until at least one of several things is ready.

The readiness protocol
----------------------
A waitable is any object with three methods:

- `_ready() -> bool`: is it ready right now? It must not block, and may take
  the object's own lock only if the object never holds that lock while calling
  its wakers (the real-thread channels call their wakers after leaving their
  lock or state section; tokens and trackers read an `AtomicBool`). `wait_any`
  calls it while holding its own mutex.
- `_add_waker(fn)`: call `fn()` after every change that may make it ready.
  `fn` may be called from any thread, with or without the object's own lock
  held, even after `_remove_waker`; it only takes `wait_any`'s mutex briefly
  and never blocks otherwise. `_add_waker` never calls `fn` itself.
- `_remove_waker(fn)`: stop calling `fn` (removing one that is absent is a no-op).

What is ready: a `CancellationToken` once cancelled; a `Receiver` when a
message is waiting or it is disconnected (so `recv` would not block; nothing
is consumed); a `TaskTracker` once closed and empty; `AnyOf(...)` when one of
its members is, `AllOf(...)` when all are. Groups nest.

Lock order: `wait_any`'s mutex may be held while `_ready` takes an object's
own lock, and an object never holds that lock while its waker takes the
`wait_any` mutex, so the two orders cannot form a cycle.
Registering the wakers before the first readiness check means no wakeup is
lost: a change either happens before the check, which sees it, or after the
waker was registered, which then notifies the parked caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .. import sync
from .._errors import check_timeout
from ._fdwait import main_thread_wait

__all__ = ["AllOf", "AnyOf", "Waitable", "wait_any"]

_PROTOCOL = ("_ready", "_add_waker", "_remove_waker")


class Waitable(Protocol):
    """What `wait_any` needs from an object (see the module docstring)."""

    def _ready(self) -> bool: ...

    def _add_waker(self, waker: Callable[[], None]) -> None: ...

    def _remove_waker(self, waker: Callable[[], None]) -> None: ...


def _check_waitable(obj: object, where: str) -> None:
    missing = [method for method in _PROTOCOL if not callable(getattr(obj, method, None))]
    if missing:
        raise TypeError(
            f"{where}: {obj!r} cannot be waited on (it lacks {', '.join(missing)}); "
            "pass CancellationTokens, Receivers, TaskTrackers, or AnyOf/AllOf groups of them"
        )


class _Group:
    """Members share one waker; subclasses decide how members combine into readiness."""

    __slots__ = ("members",)

    def __init__(self, *members: Any) -> None:
        if not members:
            raise ValueError(f"{type(self).__name__}() needs at least one waitable")
        for member in members:
            _check_waitable(member, type(self).__name__)
        self.members: tuple[Waitable, ...] = members

    def _add_waker(self, waker: Callable[[], None]) -> None:
        for member in self.members:
            member._add_waker(waker)

    def _remove_waker(self, waker: Callable[[], None]) -> None:
        for member in self.members:
            member._remove_waker(waker)

    def _ready(self) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.members))})"


class AnyOf(_Group):
    """Ready when at least one member is ready."""

    __slots__ = ()

    def _ready(self) -> bool:
        return any(member._ready() for member in self.members)


class AllOf(_Group):
    """Ready when every member is ready at the same moment."""

    __slots__ = ()

    def _ready(self) -> bool:
        return all(member._ready() for member in self.members)


def wait_any(*waitables: Any, timeout: float | None = None) -> list[Any]:
    """Park until at least one of `waitables` is ready; return those ready, in argument order.

    Returns an empty list when `timeout` seconds pass first (`timeout=0`
    only checks). Nothing is consumed: a ready `Receiver` still holds its message.
    On the main thread it parks on file descriptors, so signal handlers run
    during the wait (see `CancellationToken.wait`).
    """
    if not waitables:
        raise ValueError("wait_any() needs at least one waitable")
    for waitable in waitables:
        _check_waitable(waitable, "wait_any")
    timeout = check_timeout(timeout, "wait_any")
    ready = _ready_among(waitables)
    if ready or timeout == 0:
        return ready
    on_fds = _wait_on_fds(waitables, timeout)
    if on_fds is not None:
        return on_fds
    return _Waiter(waitables).wait(timeout)


def _wait_on_fds(waitables: tuple[Waitable, ...], timeout: float | None) -> list[Any] | None:
    """The main thread's wait: on descriptors (see `_fdwait`); None if it cannot."""
    found: list[Any] = []

    def any_ready() -> bool:
        found[:] = _ready_among(waitables)
        return bool(found)

    def add_waker(waker: Callable[[], None]) -> None:
        for waitable in waitables:
            waitable._add_waker(waker)

    def remove_waker(waker: Callable[[], None]) -> None:
        for waitable in waitables:
            waitable._remove_waker(waker)

    waited = main_thread_wait(any_ready, add_waker, remove_waker, timeout)
    if waited is None:
        return None
    return found if waited else []


def _ready_among(waitables: tuple[Waitable, ...]) -> list[Any]:
    return [waitable for waitable in waitables if waitable._ready()]


class _Waiter:
    """One `wait_any` call: a mutex and condvar that the waitables' wakers notify."""

    __slots__ = ("_cond", "_mutex", "_ready", "_waitables")

    def __init__(self, waitables: tuple[Waitable, ...]) -> None:
        self._waitables = waitables
        self._mutex: sync.Mutex[None] = sync.Mutex(name="wait_any")
        self._cond = sync.Condvar()
        self._ready: list[Any] = []

    def _wake(self) -> None:
        with self._mutex.lock():
            self._cond.notify_all()

    def _none_ready(self, _: None) -> bool:
        self._ready = _ready_among(self._waitables)
        return not self._ready

    def wait(self, timeout: float | None) -> list[Any]:
        waker = self._wake
        try:
            for waitable in self._waitables:
                waitable._add_waker(waker)
            with self._mutex.lock() as guard:
                if timeout is None:
                    self._cond.wait_while(guard, self._none_ready)
                else:
                    self._cond.wait_timeout_while(guard, timeout, self._none_ready)
            return self._ready
        finally:
            for waitable in self._waitables:
                waitable._remove_waker(waker)
