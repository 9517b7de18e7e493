"""`CancellationToken`: a one-way "please stop" flag that threads wait on and react to.

A token starts active and is cancelled at most once. Threads check it
(`is_cancelled`), park on it (`wait`), or register work to run when it fires
(`on_cancel`). Child tokens form a tree: cancelling a token cancels its whole
subtree, never its parent.

Locking discipline: each token has one facade `Mutex` that guards its state
and is held only for short bookkeeping. Children, wakers and callbacks are
collected under it and invoked after it is released, so a callback may call
back into any token (even this one) without deadlocking.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .. import sync
from .._errors import check_timeout
from ..sync.atomic import AtomicBool
from ._callbacks import run_all
from ._fdwait import main_thread_wait
from ._locking import held_for_waiting

__all__ = ["CancelGuard", "CancellationToken"]

_serial = itertools.count(1)


class _TokenState:
    """What the token's mutex guards."""

    __slots__ = ("callbacks", "cancelled", "children", "wakers")

    def __init__(self) -> None:
        self.cancelled = False
        self.callbacks: list[Callable[[], Any]] = []
        self.children: dict[int, CancellationToken] = {}
        self.wakers: list[Callable[[], None]] = []


def _still_active(state: _TokenState) -> bool:
    return not state.cancelled


class CancellationToken:
    """A flag set once by `cancel()`; threads wait on it instead of polling.

    `is_cancelled()` is a cheap read (an `AtomicBool` per ancestor), `wait()` parks on a
    `Condvar`, `child_token()` derives a token cancelled along with this one,
    and `on_cancel(fn)` runs `fn` exactly once, when the token is cancelled.
    """

    __slots__ = ("__weakref__", "_cond", "_flag", "_parent", "_state", "name")

    def __init__(self, *, name: str | None = None) -> None:
        self.name = name or f"CancellationToken#{next(_serial)}"
        self._flag = AtomicBool(False)
        self._state: sync.Mutex[_TokenState] = sync.Mutex(_TokenState(), name=f"{self.name}.state")
        self._cond = sync.Condvar()
        self._parent: CancellationToken | None = None

    def cancel(self) -> None:
        """Cancel this token and every token derived from it (idempotent).

        Waiters wake up, then descendants are cancelled, then the `on_cancel`
        callbacks run on this thread, with no lock held. A callback that
        raises is reported to `sys.unraisablehook`; the others still run and
        `cancel()` itself never raises because of them.
        """
        if self._flag.load():
            return
        with self._state.lock() as guard:
            state = guard.value
            if state.cancelled:
                return
            state.cancelled = True
            self._flag.store(True)
            children = list(state.children.values())
            wakers, callbacks = state.wakers, state.callbacks
            state.children, state.wakers, state.callbacks = {}, [], []
            self._cond.notify_all()
        if self._parent is not None:
            self._parent._forget(self)
        for child in children:
            child.cancel()
        run_all(wakers, (), f"a waker of {self.name}")
        run_all(callbacks, (), f"an on_cancel callback of {self.name}")

    def is_cancelled(self) -> bool:
        """True once `cancel()` was called on this token or an ancestor.

        Ancestors are checked too, so a subtree reads as cancelled the moment
        its root is, even while another thread is still cancelling it node by node.
        """
        token: CancellationToken | None = self
        while token is not None:
            if token._flag.load():
                return True
            token = token._parent
        return False

    def wait(self, timeout: float | None = None) -> bool:
        """Park until cancelled; True if cancelled, False if `timeout` seconds passed first.

        On the main thread (outside a model execution) it parks on file
        descriptors, so a signal's Python handler runs at once even on
        free-threaded CPython, where a blocked lock acquire may not let it run:
        see `concurrency.lifecycle._fdwait`. If the application already owns
        the signal wake-up fd (`signal.set_wakeup_fd`), it parks on the condvar
        as other threads do.
        """
        timeout = check_timeout(timeout, "CancellationToken.wait")
        if self.is_cancelled():
            return True
        on_fds = main_thread_wait(self.is_cancelled, self._add_waker, self._remove_waker, timeout)
        if on_fds is not None:
            return on_fds
        with held_for_waiting(self._state) as guard:
            if timeout is None:
                self._cond.wait_while(guard, _still_active)
                return True
            timed_out = self._cond.wait_timeout_while(guard, timeout, _still_active)
        # An ancestor may be cancelled while the cascade has not reached this token yet.
        return not timed_out or self.is_cancelled()

    def child_token(self, *, name: str | None = None) -> CancellationToken:
        """A new token cancelled whenever this one is (never the other way round).

        The child of a token that is already cancelled starts cancelled. A
        child stays registered with its parent until either is cancelled, so
        cancel short-lived children (or use `guard()`) when they are done.
        """
        child = CancellationToken(name=name or f"{self.name}/child#{next(_serial)}")
        child._parent = self
        with self._state.lock() as guard:
            state = guard.value
            if not state.cancelled:
                state.children[id(child)] = child
                return child
        child.cancel()  # born cancelled: it reads as cancelled through its parent anyway
        return child

    def on_cancel(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` once when this token is cancelled, or right now if it already is.

        Callbacks run on the thread that cancels, in registration order, with
        no lock held; an exception in one is reported to `sys.unraisablehook`
        and does not stop the others.
        """
        if not callable(fn):
            raise TypeError(f"CancellationToken.on_cancel: {fn!r} is not callable")
        with self._state.lock() as guard:
            state = guard.value
            if not state.cancelled:
                state.callbacks.append(fn)
                return
        run_all((fn,), (), f"an on_cancel callback of {self.name}")

    def guard(self) -> CancelGuard:
        """A context manager that cancels this token on exit unless `disarm()` was called."""
        return CancelGuard(self)

    def _forget(self, child: CancellationToken) -> None:
        """Drop a child that was cancelled on its own, so the parent does not keep it."""
        with self._state.lock() as guard:
            guard.value.children.pop(id(child), None)

    # -- the readiness protocol of `wait_any` (see `concurrency.lifecycle.wait_any`)

    def _ready(self) -> bool:
        return self.is_cancelled()

    def _add_waker(self, waker: Callable[[], None]) -> None:
        with self._state.lock() as guard:
            state = guard.value
            if not state.cancelled:
                state.wakers.append(waker)

    def _remove_waker(self, waker: Callable[[], None]) -> None:
        with self._state.lock() as guard:
            wakers = guard.value.wakers
            if waker in wakers:
                wakers.remove(waker)

    def __repr__(self) -> str:
        state = "cancelled" if self.is_cancelled() else "active"
        return f"<CancellationToken {self.name} {state}>"


class CancelGuard:
    """Cancels its token when the `with` block ends, unless `disarm()` was called first.

    It ties a token's lifetime to a block: whatever way the block is left
    (return, exception), work derived from the token is told to stop.
    """

    __slots__ = ("_armed", "token")

    def __init__(self, token: CancellationToken) -> None:
        self.token = token
        self._armed = True

    def disarm(self) -> None:
        """Leave the token alone when the block ends."""
        self._armed = False

    def __enter__(self) -> CancelGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._armed:
            self.token.cancel()
