"""Threads: `spawn` and `JoinHandle`, structured `scope`, `local`, `yield_now`, `sleep`.

Inside a model execution these create and schedule simulated threads; on the
real-thread backends they are OS threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from ._facade import Facade
from .backends import implementation

R = TypeVar("R")

__all__ = [
    "JoinHandle",
    "Scope",
    "current",
    "local",
    "scope",
    "sleep",
    "spawn",
    "yield_now",
]


class JoinHandle(Facade, Generic[R]):
    """A spawned thread: `join()` returns its result or re-raises its exception."""

    __slots__ = ()
    name: str

    def join(self, timeout: float | None = None) -> R:
        """Wait for the thread; raise `TimeoutError` if `timeout` passes first."""
        raise NotImplementedError

    def is_finished(self) -> bool:
        raise NotImplementedError


class ThreadInfo(Protocol):
    """What `current()` returns: at least the thread's `name`."""

    @property
    def name(self) -> str: ...


def spawn(fn: Callable[..., R], *args: Any, name: str | None = None, **kwargs: Any) -> JoinHandle[R]:
    """Run `fn(*args, **kwargs)` on a new thread."""
    handle: JoinHandle[R] = implementation().spawn(fn, args, kwargs, name)
    return handle


def current() -> ThreadInfo:
    """The calling thread (has `.name`)."""
    info: ThreadInfo = implementation().current()
    return info


def yield_now() -> None:
    """Offer the processor to another thread (a scheduling point under the model)."""
    implementation().yield_now()


def sleep(seconds: float) -> None:
    """Sleep for `seconds` (virtual time under the model: nothing really sleeps)."""
    implementation().sleep(seconds)


def local() -> Any:
    """A fresh thread-local namespace that is per-thread under every backend."""
    from .backends._local import ThreadLocal

    return ThreadLocal()


class Scope:
    """The spawner of a `scope()` block; every thread it spawns is joined at the end."""

    def __init__(self) -> None:
        self._handles: list[JoinHandle[Any]] = []

    def spawn(
        self, fn: Callable[..., R], *args: Any, name: str | None = None, **kwargs: Any
    ) -> JoinHandle[R]:
        handle = spawn(fn, *args, name=name, **kwargs)
        self._handles.append(handle)
        return handle

    def _join_all(self) -> list[BaseException]:
        """Join every thread; return the exceptions nobody observed through `join`.

        An exception that interrupts the waiting itself (Ctrl-C, pytest-timeout)
        while the thread still runs is not the thread's: it propagates at once,
        and the threads still running are left running.
        """
        unobserved = []
        for handle in self._handles:
            already_joined = handle._joined  # type: ignore[attr-defined]
            try:
                handle.join()
            except BaseException as exc:
                if not _raised_by_thread(handle, exc):
                    raise
                if not already_joined:
                    unobserved.append(exc)
        return unobserved


def _raised_by_thread(handle: JoinHandle[Any], exc: BaseException) -> bool:
    """Whether `exc`, raised by `handle.join()`, is the thread's own exception.

    Anything else interrupted the wait (Ctrl-C, pytest-timeout), possibly just as
    the thread finished. A finished thread's `join` re-raises its own exception
    at once, so joining it again tells the two apart.
    """
    if not handle.is_finished():
        return False
    try:
        handle.join(0)
    except BaseException as own:
        return own is exc
    return False


@contextmanager
def scope() -> Iterator[Scope]:
    """Structured threads: leaving the block joins every thread spawned in it.

    Exceptions of threads not joined explicitly, and of the block itself, are
    raised together as one `ExceptionGroup` once every thread has finished. An
    exception that interrupts the joining (Ctrl-C) is never swallowed: it stops
    the waiting and propagates as itself, leaving unfinished threads running.
    """
    spawner = Scope()
    body_error: BaseException | None = None
    try:
        yield spawner
    except GeneratorExit:
        raise  # the `with` never resumed (its frame was discarded): nothing to join from here
    except BaseException as exc:
        body_error = exc
    errors = spawner._join_all()
    if body_error is not None:
        errors.insert(0, body_error)
    if errors:
        raise BaseExceptionGroup("errors in thread scope", errors)
