"""`Service`: something that serves on its own thread until told to stop, restartably.

Subclass it and implement `serve()`. Each `start()` makes a fresh
`self.token` and runs `serve()` on a new facade thread; `serve()` is expected
to return soon after `self.token` is cancelled (it can `wait_any` on the
token and its inputs, or check `self.token.is_cancelled()` between steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import sync, thread
from .._errors import check_timeout, report_unraisable
from ._callbacks import run_all
from ._fdwait import main_thread_wait, uses_fd_waits
from ._locking import held_for_waiting
from .token import CancellationToken

__all__ = ["Service"]

CloseCallback = Callable[[BaseException | None], Any]


class _ServiceState:
    __slots__ = ("error", "handle", "serving", "wakers")

    def __init__(self) -> None:
        self.serving = False  # serve() or its on_close callbacks are still running
        self.handle: thread.JoinHandle[None] | None = None
        self.error: BaseException | None = None  # what the last serve() raised
        self.wakers: list[Callable[[], None]] = []  # main-thread waits on descriptors


def _serving(state: _ServiceState) -> bool:
    return state.serving


class Service:
    """Base class: `start()`/`stop()` run and end `serve()` on a thread of its own.

    - `start()` fails with `RuntimeError` while the service is still serving.
    - `stop()` cancels `self.token` and joins the thread; it is idempotent,
      and `start()` works again afterwards.
    - `wait(timeout=None)` is True once serving has ended (at once if never started).
    - `run()` starts and waits; it re-raises what `serve()` raised.
    - `on_close(fn)`: `fn(error)` runs each time serving ends, on the service
      thread, before `stop()`/`wait()` return; `error` is what `serve()`
      raised, or None. When nothing observes a `serve()` exception (no
      `on_close` callback, not started by `run()`), it goes to `sys.unraisablehook`.

    With `parent` (a token, such as a `Subsystem`'s), each start's token is a
    child of it: cancelling the parent stops the service, and a start after
    the parent was cancelled serves with a token that is already cancelled.

    Subclasses that define `__init__` must call `super().__init__()`.
    """

    def __init__(self, *, name: str | None = None, parent: CancellationToken | None = None) -> None:
        self.name = name or type(self).__name__
        self.parent = parent
        self.token = self._fresh_token()
        self._state: sync.Mutex[_ServiceState] = sync.Mutex(
            _ServiceState(), name=f"{self.name}.state"
        )
        self._ended = sync.Condvar()
        self._close_callbacks: sync.Mutex[list[CloseCallback]] = sync.Mutex([])
        self._inside = thread.local()  # `serving` is set on the service thread only

    def serve(self) -> None:
        """Do the service's work until `self.token` is cancelled. Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement serve()")

    def start(self) -> None:
        """Run `serve()` on a new thread with a fresh `self.token`."""
        self._start(observed_by_run=False)

    def _start(self, *, observed_by_run: bool) -> None:
        if not hasattr(self, "_state"):
            raise RuntimeError(
                f"{type(self).__name__}.__init__ did not call Service.__init__ (super().__init__())"
            )
        token = self._fresh_token()
        spawn_error: BaseException | None = None
        with self._state.lock() as guard:  # nothing may escape from here: it would poison
            state = guard.value
            already_serving = state.serving
            if not already_serving:
                previous, self.token = self.token, token
                state.error = None
                try:
                    state.handle = thread.spawn(
                        self._serve_once, token, observed_by_run, name=f"{self.name}.serve"
                    )
                    state.serving = True
                except BaseException as error:  # raised below, once the lock is released
                    spawn_error = error
        if already_serving:
            token.cancel()  # unregister it from the parent
            raise RuntimeError(
                f"service {self.name!r} is already running; stop() it before starting it again"
            )
        previous.cancel()  # the token of a serve() that is over (or of none): let it go
        if spawn_error is not None:
            raise spawn_error

    def _fresh_token(self) -> CancellationToken:
        name = f"{self.name}.token"
        if self.parent is None:
            return CancellationToken(name=name)
        return self.parent.child_token(name=name)

    def _serve_once(self, token: CancellationToken, observed_by_run: bool) -> None:
        """The service thread: serve, hand the outcome to on_close, then mark serving over."""
        self._inside.serving = True
        error: BaseException | None = None
        try:
            self.serve()
        except BaseException as exc:  # handed to on_close, run() or the hook below
            error = exc
        finally:
            with self._close_callbacks.lock() as guard:
                callbacks = list(guard.value)
            run_all(callbacks, (error,), f"an on_close callback of service {self.name!r}")
            if error is not None and not callbacks and not observed_by_run:
                report_unraisable(error, f"Exception in serve() of service {self.name!r}", self)
            self._mark_ended(error)

    def _mark_ended(self, error: BaseException | None) -> None:
        with self._state.lock() as guard:
            guard.value.serving = False
            guard.value.error = error
            self._ended.notify_all()
            wakers = list(guard.value.wakers)
        for waker in wakers:
            waker()

    def _has_ended(self, handle: thread.JoinHandle[None] | None = None) -> bool:
        """Serving has ended (when `handle` is given: the run on that thread has)."""
        with held_for_waiting(self._state) as guard:
            state = guard.value
            return not state.serving or (handle is not None and state.handle is not handle)

    def _add_end_waker(self, waker: Callable[[], None]) -> None:
        with self._state.lock() as guard:
            guard.value.wakers.append(waker)

    def _remove_end_waker(self, waker: Callable[[], None]) -> None:
        with self._state.lock() as guard:
            wakers = guard.value.wakers
            if waker in wakers:
                wakers.remove(waker)

    def stop(self) -> None:
        """Cancel `self.token` and wait for `serve()` to end (idempotent).

        Called from inside `serve()` (or an `on_close` callback) it only
        cancels: a thread cannot wait for itself.
        """
        with self._state.lock() as guard:
            handle = guard.value.handle
            token = self.token
        token.cancel()
        if handle is None or getattr(self._inside, "serving", False):
            return
        if uses_fd_waits():  # the main thread: first a wait that signal handlers can interrupt
            main_thread_wait(
                lambda: self._has_ended(handle), self._add_end_waker, self._remove_end_waker, None
            )
        handle.join()  # serve()'s outcome was caught on its thread: this never raises it
        with self._state.lock() as guard:
            if guard.value.handle is handle:
                guard.value.handle = None

    def wait(self, timeout: float | None = None) -> bool:
        """Park until serving has ended; False if `timeout` seconds passed first.

        On the main thread it parks on file descriptors, so signal handlers
        run during the wait (see `CancellationToken.wait`).
        """
        timeout = check_timeout(timeout, "Service.wait")
        on_fds = main_thread_wait(self._has_ended, self._add_end_waker, self._remove_end_waker, timeout)
        if on_fds is not None:
            return on_fds
        with held_for_waiting(self._state) as guard:
            if timeout is None:
                self._ended.wait_while(guard, _serving)
                return True
            return not self._ended.wait_timeout_while(guard, timeout, _serving)

    def run(self) -> None:
        """Start, then wait until serving ends; re-raise what `serve()` raised.

        If the wait is interrupted (KeyboardInterrupt, say), the service is stopped first.
        """
        self._start(observed_by_run=True)
        try:
            self.wait()
        except BaseException:
            self.stop()
            raise
        self.stop()  # reaps the finished thread
        with self._state.lock() as guard:
            error = guard.value.error
        if error is not None:
            raise error

    def on_close(self, fn: CloseCallback) -> None:
        """Call `fn(error)` each time serving ends (`error`: what `serve()` raised, or None)."""
        if not callable(fn):
            raise TypeError(f"Service.on_close: {fn!r} is not callable")
        with self._close_callbacks.lock() as guard:
            guard.value.append(fn)

    def is_running(self) -> bool:
        """True from `start()` until serving has ended."""
        with self._state.lock() as guard:
            return guard.value.serving

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {self.name} {state}>"
