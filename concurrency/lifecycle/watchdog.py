"""The shutdown watchdog: a last resort that ends a process whose shutdown hangs.

Once its trigger token is cancelled, the watchdog gives the shutdown
`seconds` to settle. If it has not, it writes what is still running and
every thread's stack to stderr (`faulthandler.dump_traceback(all_threads=True)`)
and ends the process with `os._exit(exit_code)`: no cleanup runs, because the
cleanup is what hangs.

It runs on a real daemon thread, not a facade thread: it must never keep the
process alive itself, and it must keep running while the interpreter, at
exit, waits for non-daemon threads that ignore cancellation.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from .token import CancellationToken

__all__ = ["start_watchdog_thread"]

Remaining = Callable[[], float]


def start_watchdog_thread(
    seconds: float,
    *,
    trigger: CancellationToken,
    settled: Callable[[Remaining], bool],
    describe: Callable[[], str],
    on_fire: Callable[[], None],
    exit_code: int,
) -> threading.Thread:
    """Start the watchdog thread.

    `settled(remaining)` waits until the shutdown is over, giving each wait at
    most `remaining()` seconds, and says whether it is over. `describe()`
    says what is still running; `on_fire()` runs just before the dump.
    """

    def watch() -> None:
        trigger.wait()
        deadline = time.monotonic() + seconds

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        if settled(remaining):
            return
        on_fire()
        _dump_and_exit(
            f"watchdog: shutdown still not finished {seconds:g}s after {trigger.name} was "
            f"cancelled; {describe()}. Stacks of every thread follow; exiting with code "
            f"{exit_code}.\n",
            exit_code,
        )

    watchdog = threading.Thread(target=watch, name="lifecycle-watchdog", daemon=True)
    watchdog.start()
    return watchdog


def _stderr() -> TextIO | None:
    """A stream with a real file descriptor for faulthandler (tests may replace sys.stderr)."""
    for stream in (sys.stderr, sys.__stderr__):
        if stream is None:
            continue
        try:
            stream.flush()
            stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue
        return stream
    return None


def _dump_and_exit(message: str, exit_code: int) -> None:
    stream = _stderr()
    try:
        if stream is not None:
            os.write(stream.fileno(), message.encode(errors="replace"))
            faulthandler.dump_traceback(file=stream, all_threads=True)
    finally:
        os._exit(exit_code)
