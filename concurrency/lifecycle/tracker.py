"""`TaskTracker`: spawns threads and knows which of them are still running.

It answers the question a shutdown has to ask: "have all my threads finished?"
Closing a tracker does not refuse new tasks (a task may still hand work to a
helper while shutting down); it means "no more are expected", so `wait()`
returns once the tracker is closed and every task has finished, late ones too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .. import sync, thread
from .._errors import check_timeout
from ..sync.atomic import AtomicBool
from ._fdwait import main_thread_wait
from ._locking import held_for_waiting

__all__ = ["TaskTracker", "task_name"]

R = TypeVar("R")


def task_name(fn: Callable[..., Any]) -> str:
    """The name a task gets when none is given: its function's name."""
    return getattr(fn, "__name__", None) or type(fn).__name__


class _TrackerState:
    __slots__ = ("closed", "next_id", "running", "wakers")

    def __init__(self) -> None:
        self.closed = False
        self.next_id = 0
        self.running: dict[int, str] = {}  # task id -> name, in spawn order
        self.wakers: list[Callable[[], None]] = []


def _busy(state: _TrackerState) -> bool:
    return not state.closed or bool(state.running)


class TaskTracker:
    """Spawns facade threads and waits for all of them once closed.

    `len(tracker)` is the number of tasks still running; `wait()` is True
    once the tracker is closed and that number is zero.
    """

    __slots__ = ("_cond", "_idle", "_state", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name or "TaskTracker"
        self._state: sync.Mutex[_TrackerState] = sync.Mutex(
            _TrackerState(), name=f"{self.name}.state"
        )
        self._cond = sync.Condvar()
        self._idle = AtomicBool(False)  # closed and empty, readable without the lock

    def spawn(
        self, fn: Callable[..., R], *args: Any, name: str | None = None, **kwargs: Any
    ) -> thread.JoinHandle[R]:
        """Run `fn(*args, **kwargs)` on a new thread named `name` (default: `fn`'s name).

        The task counts as running from before its thread starts until `fn`
        has returned or raised. The handle's `join()` gives `fn`'s outcome.
        """
        if not callable(fn):
            raise TypeError(f"TaskTracker.spawn: {fn!r} is not callable")
        name = task_name(fn) if name is None else name
        with self._state.lock() as guard:
            state = guard.value
            task_id = state.next_id
            state.next_id += 1
            state.running[task_id] = name
            self._idle.store(False)
        try:
            return thread.spawn(self._run, task_id, fn, args, kwargs, name=name)
        except BaseException:
            self._finish(task_id)
            raise

    def _run(self, task_id: int, fn: Callable[..., R], args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            self._finish(task_id)

    def _finish(self, task_id: int) -> None:
        with self._state.lock() as guard:
            state = guard.value
            del state.running[task_id]
            wakers = self._note_if_idle(state)
        for waker in wakers:
            waker()

    def _note_if_idle(self, state: _TrackerState) -> list[Callable[[], None]]:
        """Under the lock: if closed and empty, wake waiters; return the wakers to call."""
        if _busy(state):
            return []
        self._idle.store(True)
        self._cond.notify_all()
        return list(state.wakers)

    def close(self) -> None:
        """Say that no more tasks are expected; `wait()` can now return."""
        with self._state.lock() as guard:
            state = guard.value
            state.closed = True
            wakers = self._note_if_idle(state)
        for waker in wakers:
            waker()

    def reopen(self) -> None:
        """Undo `close()`: `wait()` blocks again until the next `close()`."""
        with self._state.lock() as guard:
            guard.value.closed = False
            self._idle.store(False)

    def is_closed(self) -> bool:
        with self._state.lock() as guard:
            return guard.value.closed

    def wait(self, timeout: float | None = None) -> bool:
        """Park until closed and empty; False if `timeout` seconds passed first.

        On the main thread it parks on file descriptors, so signal handlers
        run during the wait (see `CancellationToken.wait`).
        """
        idle, _ = self._await_idle(check_timeout(timeout, "TaskTracker.wait"))
        return idle

    def _await_idle(self, timeout: float | None) -> tuple[bool, list[str]]:
        """Wait as `wait()` does; also return the names still running, read under the same lock."""
        waited = None
        if not self._idle.load():
            waited = main_thread_wait(self._ready, self._add_waker, self._remove_waker, timeout)
        with held_for_waiting(self._state) as guard:
            if waited is not None:
                pass  # the main thread waited on descriptors: only read the outcome
            elif timeout is None:
                self._cond.wait_while(guard, _busy)
            else:
                self._cond.wait_timeout_while(guard, timeout, _busy)
            state = guard.value
            return not _busy(state), list(state.running.values())

    def _running_names(self) -> list[str]:
        with self._state.lock() as guard:
            return list(guard.value.running.values())

    def __len__(self) -> int:
        with self._state.lock() as guard:
            return len(guard.value.running)

    def __repr__(self) -> str:
        with self._state.lock() as guard:
            state = guard.value
            closed = "closed" if state.closed else "open"
            return f"<TaskTracker {self.name} {closed}, {len(state.running)} running>"

    # -- the readiness protocol of `wait_any`: ready once closed and empty

    def _ready(self) -> bool:
        return self._idle.load()

    def _add_waker(self, waker: Callable[[], None]) -> None:
        with self._state.lock() as guard:
            guard.value.wakers.append(waker)

    def _remove_waker(self, waker: Callable[[], None]) -> None:
        with self._state.lock() as guard:
            wakers = guard.value.wakers
            if waker in wakers:
                wakers.remove(waker)
