"""`JoinHandle`, `spawn`, `current`, `sleep` and `yield_now` on OS threads.

A `JoinHandle` answers from the thread's own completion: the runner records
the outcome and sets `_finished` under the handle's raw lock as its last act,
and `join()`/`is_finished()` read that flag. Nothing depends on
`threading.Thread.join` or `is_alive`, so a `join` cut short by Ctrl-C (whose
handling in `Thread.join` varies between CPython versions) can never make a
running thread look finished.

Async-exception safety is best-effort in pure Python (see `_common`): an
interrupted `join` leaves its wait queue and raises; the thread runs on.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from ... import thread
from ..._errors import check_timeout, report_unraisable
from ._common import WaitQueue, allocate_lock, deadline_after, remaining

__all__ = ["JoinHandle", "current", "sleep", "spawn", "yield_now"]

_thread_serial = itertools.count(1)
_serial_lock = allocate_lock()


def _thread_name(fn: Callable[..., Any]) -> str:
    with _serial_lock:
        serial = next(_thread_serial)
    return f"{getattr(fn, '__name__', 'thread')}-{serial}"


class JoinHandle(thread.JoinHandle[Any]):
    """An OS thread running `fn`; its outcome is kept for `join`."""

    __slots__ = ("_error", "_finished", "_joined", "_lock", "_queue", "_result", "_thread", "name")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 name: str | None) -> None:
        self._result: Any = None
        self._error: BaseException | None = None
        self._finished = False  # set by the runner, under `_lock`, once `fn` is done
        self._joined = False
        self._lock = allocate_lock()
        self._queue = WaitQueue()  # joiners waiting for `_finished`
        self._thread = threading.Thread(
            target=self._run, args=(fn, args, kwargs), name=_thread_name(fn) if name is None else name
        )
        self.name = self._thread.name

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            error = exc
        finally:
            with self._lock:
                self._result = result
                self._error = error
                self._finished = True
                self._queue.notify_all()

    def join(self, timeout: float | None = None) -> Any:
        timeout = check_timeout(timeout, "JoinHandle.join")
        if self._thread is threading.current_thread():
            raise RuntimeError(f"thread {self.name} cannot join itself")
        deadline = deadline_after(timeout)
        with self._lock:
            while not self._finished:
                left = remaining(deadline)
                if left == 0.0:
                    raise TimeoutError(f"thread {self.name} still running after {timeout}s")
                self._queue.wait(self._lock, left)
            self._joined = True
            error, result = self._error, self._result
        if error is not None:
            raise error
        return result

    def is_finished(self) -> bool:
        with self._lock:
            return self._finished

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
