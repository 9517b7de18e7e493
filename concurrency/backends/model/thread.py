"""`concurrency.thread` under the model: simulated threads and virtual time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import thread
from ..._errors import check_timeout
from .. import execution_state
from .runtime import ModelThreadBase, label


def _runtime() -> Any:
    runtime = execution_state.runtime
    if runtime is None or runtime.current is None:
        raise RuntimeError("this call needs a running model thread")
    return runtime


def _never() -> bool:
    return False


class JoinHandle(ModelThreadBase, thread.JoinHandle[Any]):
    """A simulated thread; it is also what `current()` returns inside it."""

    __slots__ = ()

    def _is_finished(self) -> bool:
        return bool(self.finished)

    def join(self, timeout: float | None = None) -> Any:
        timeout = check_timeout(timeout, "JoinHandle.join")
        runtime = self.execution
        if runtime.current is self:
            raise RuntimeError(f"thread {self.name} cannot join itself")
        if not self.finished:
            deadline = None if timeout is None else runtime.clock + timeout
            if not runtime.point("join", self, self._is_finished, deadline, local=True):
                raise TimeoutError(f"thread {self.name} still running after {timeout}s")
        self._joined = True
        if self.error is not None:
            runtime.reraising(self)  # the report names this thread, not the joiner
            raise self.error
        return self.result

    def _waits(self, waiter: Any) -> tuple[str, list[Any]]:
        """For a deadlock report: a thread blocked joining this one."""
        return f"for {label(self)} to finish", [self]

    def is_finished(self) -> bool:
        self.execution.point("is_finished", self)
        return bool(self.finished)


def spawn(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
          name: str | None) -> JoinHandle:
    if not callable(fn):
        raise TypeError(f"spawn: {fn!r} is not callable")
    runtime = _runtime()
    handle: JoinHandle = runtime.spawn(JoinHandle, fn, args, kwargs, name)
    if runtime.tracing:
        runtime.note("spawn", handle)
    return handle


def current() -> Any:
    return _runtime().current


def yield_now() -> None:
    """A scheduling point after which the other runnable threads go first."""
    runtime = _runtime()
    me = runtime.current
    me.spins = me.spins + 1 if me.yield_mark == runtime.switches else 1
    me.yield_mark = runtime.switches
    me.yielded = True
    runtime.point("yield_now", None)


def sleep(seconds: float) -> None:
    seconds = check_timeout(seconds, "thread.sleep", allow_none=False) or 0.0
    runtime = _runtime()
    if seconds == 0.0:
        yield_now()
    else:
        runtime.point("sleep", None, _never, runtime.clock + seconds)
