"""SIGINT and SIGTERM as a shutdown request: the first cancels a token, a second exits.

Python runs signal handlers on the main thread, between two bytecodes of
whatever it was doing, possibly while it holds one of the token's locks.
Cancelling from the handler could therefore deadlock. The handler only puts
the signal number on a `queue.SimpleQueue` (whose `put` is safe to call from
a signal handler) and a relay thread, a daemon so that it never keeps the
process alive, cancels the token. A second signal means "stop now": the
handler exits the process with `os._exit(128 + signum)`, the status a shell
reports for a process killed by that signal (130 for SIGINT, 143 for SIGTERM).

These are process-level facilities, so they use real OS threads and refuse to
run inside a model-checker execution.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from types import FrameType
from typing import Any

from ..backends import execution_state
from .token import CancellationToken

__all__ = ["HANDLED_SIGNALS", "SignalRelay", "require_real_process"]

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_STOP = object()


def require_real_process(what: str) -> None:
    """Refuse process-level work (signals, watchdog) inside a model-checker execution."""
    if execution_state.runtime is not None:
        raise RuntimeError(
            f"{what} acts on the real process (signals, os._exit) and cannot run inside a "
            "model-checker execution; call it from the program's main code instead"
        )


class SignalRelay:
    """Installed handlers for `HANDLED_SIGNALS` that cancel `token` on the first signal."""

    def __init__(self, token: CancellationToken) -> None:
        self._token = token
        self._signals_seen = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Install the handlers and start the relay thread (main thread only)."""
        require_real_process("install_signal_handlers()")
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "install_signal_handlers() must be called from the main thread: Python "
                f"delivers signals only there, and this is {threading.current_thread().name!r}"
            )
        threading.Thread(target=self._relay, name="lifecycle-signal-relay", daemon=True).start()
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put the previous handlers back and end the relay thread (main thread only)."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        self._queue.put(_STOP)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._signals_seen += 1
        if self._signals_seen > 1:
            name = signal.Signals(signum).name
            os.write(2, f"second {name} during shutdown: exiting at once\n".encode())
            os._exit(128 + signum)
        self._queue.put(signum)

    def _relay(self) -> None:
        if self._queue.get() is not _STOP:
            self._token.cancel()
