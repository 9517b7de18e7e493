"""Parking on file descriptors: the main thread's waits, woken by wakers and by signals.

Why: Python runs signal handlers on the main thread, between two bytecodes. A
main thread blocked in a lock acquire runs them only if the OS interrupts that
acquire, and on free-threaded CPython (3.13t) it often is not: the signal is
noted, the handler never runs, and a program parked in `Shutdown.wait()`
ignores SIGTERM. A stdlib-only `threading.Event().wait()` hangs the same way.
A wait on file descriptors does not have that problem: `signal.set_wakeup_fd`
makes the interpreter's C-level handler write a byte to a descriptor, whichever
thread the OS delivered the signal to, so a `poll()` on that descriptor wakes
and the handler runs as soon as Python code runs again.

The API, small on purpose (the fd waitables of `wait_any` build on it):

- `WakeFd`: an in-process event backed by an eventfd (Linux) or a pipe:
  `set()` from any thread, `fileno()` to wait on, `drain()`, `close()`.
- `wait_readable(fds, timeout)`: one OS wait (`poll`, else `select`) until one
  of `fds` is readable or `timeout` passes; the ones readable.
- `signal_wakeup()`: a context manager that installs the signal wake-up fd for
  its duration when no one else owns it, yielding the descriptor to wait on
  (None when the application already owns one or this is not the main thread).
- `main_thread_wait(ready, add_waker, remove_waker, timeout)`: the wait the
  lifecycle objects use on the main thread; None when it cannot apply, and the
  caller then does its ordinary wait.

Nothing here polls or slices the timeout: each OS wait runs until a waker, a
signal or the caller's deadline ends it (an OS wait is capped at ~24 days, the
limit of `poll`'s timeout, so a longer wait takes more than one).
"""

from __future__ import annotations

import errno
import math
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType

from ..backends import execution_state

__all__ = [
    "WakeFd",
    "main_thread_wait",
    "signal_wakeup",
    "uses_fd_waits",
    "wait_readable",
]

_MAX_OS_WAIT_MS = 2**31 - 1  # poll()'s timeout is a C int of milliseconds


class WakeFd:
    """An event that a descriptor wait can see: `set()` makes `fileno()` readable.

    Backed by a non-blocking eventfd where the OS has one, else a pipe. `set()`
    may be called from any thread, any number of times, and after `close()`
    (then it does nothing: the descriptor number may already belong to a file
    opened since, so it is never written once closed).
    """

    __slots__ = ("_closed", "_lock", "_read", "_write")

    def __init__(self) -> None:
        # Reentrant: a signal handler that runs inside set() or close() on the
        # main thread may call set() again (cancelling a token, say).
        self._lock = threading.RLock()
        self._closed = False
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._read = self._write = fd
        else:  # pragma: no cover - non-Linux
            self._read, self._write = os.pipe()
            os.set_blocking(self._read, False)
            os.set_blocking(self._write, False)

    def fileno(self) -> int:
        """The descriptor that is readable once `set()` was called (until `drain()`)."""
        return self._read

    def set(self) -> None:
        """Make `fileno()` readable (idempotent; does nothing once closed)."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._read == self._write:
                    os.eventfd_write(self._write, 1)
                else:  # pragma: no cover - non-Linux
                    os.write(self._write, b"\0")
            except BlockingIOError:  # the counter or the pipe is full: it is readable anyway
                pass

    def drain(self) -> None:
        """Make `fileno()` unreadable again, consuming every `set()` so far."""
        with self._lock:
            if not self._closed:
                _drain(self._read)

    def close(self) -> None:
        """Close the descriptors (idempotent); later `set()` calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._read)
            if self._write != self._read:  # pragma: no cover - non-Linux
                os.close(self._write)

    def __enter__(self) -> WakeFd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._read}"
        return f"<WakeFd {state}>"


def _drain(fd: int) -> bytes:
    """Read everything waiting on a non-blocking descriptor; return what was read."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            break
        if not chunk:
            break
        chunks.append(chunk)
        if len(chunk) < 4096:
            break
    return b"".join(chunks)


def wait_readable(fds: Iterable[int], timeout: float | None) -> list[int]:
    """Block in one OS wait until one of `fds` is readable or `timeout` seconds pass.

    Returns the readable ones (empty on timeout). None waits without limit; a
    timeout beyond poll()'s limit (~24 days) returns early, empty, after that limit.
    A signal that interrupts the wait runs its Python handler (PEP 475); if the
    handler raises, so does this.
    """
    fds = list(fds)
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        if timeout is None:
            events = poller.poll()
        else:
            events = poller.poll(min(math.ceil(max(timeout, 0.0) * 1000), _MAX_OS_WAIT_MS))
        return [fd for fd, _ in events]
    readable, _, _ = select.select(fds, [], [], timeout)  # pragma: no cover - no poll()
    return list(readable)


# -- the signal wake-up descriptor

_signal_pipe: tuple[int, int, int] | None = None  # (pid, read end, write end): main thread only


def _our_signal_pipe() -> tuple[int, int]:
    """A non-blocking pipe for `signal.set_wakeup_fd`, made once per process.

    It is a pipe and not an eventfd because the interpreter writes one byte per
    signal. Only the main thread uses it, so no lock; a forked child makes its own.
    """
    global _signal_pipe
    pid = os.getpid()
    if _signal_pipe is None or _signal_pipe[0] != pid:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        _signal_pipe = (pid, read, write)
    return _signal_pipe[1], _signal_pipe[2]


@contextmanager
def signal_wakeup() -> Iterator[int | None]:
    """Install a signal wake-up fd for the block; yield the fd to wait on, or None.

    None means a wake-up fd cannot be ours: this is not the main thread, or the
    application (asyncio, say) already set one. That one is left in place, and
    any signal byte written meanwhile to ours is passed on to it. Otherwise the
    previous setting (none) is restored when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    read, write = _our_signal_pipe()
    try:
        previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        yield None
        return
    if previous != -1:
        signal.set_wakeup_fd(previous)  # someone else's: give it back at once
        _forward(_drain(read), previous)
        yield None
        return
    try:
        yield read
    finally:
        signal.set_wakeup_fd(-1)
        _drain(read)


def _forward(data: bytes, fd: int) -> None:
    """Hand signal bytes that landed in our pipe to the application's wake-up fd."""
    if not data:
        return
    try:
        os.write(fd, data)
    except OSError as error:  # full or gone: the application's own handler still runs
        if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBADF, errno.EPIPE):
            raise


# -- the wait itself


def uses_fd_waits() -> bool:
    """True when a lifecycle wait on this thread parks on descriptors (the main thread
    of a real-thread run, outside any model execution)."""
    return (
        execution_state.runtime is None
        and threading.current_thread() is threading.main_thread()
    )


def main_thread_wait(
    ready: Callable[[], bool],
    add_waker: Callable[[Callable[[], None]], None],
    remove_waker: Callable[[Callable[[], None]], None],
    timeout: float | None,
) -> bool | None:
    """Park the main thread until `ready()` or `timeout` seconds pass; None if it cannot.

    `add_waker(fn)` must arrange for `fn()` to be called (from any thread) after
    every change that may make `ready()` true, `remove_waker(fn)` undoes it (the
    readiness protocol of `wait_any`). The wait is one OS wait on a fresh `WakeFd`
    (which `fn` sets) and on the signal wake-up fd; after a wake it re-checks
    `ready()` and, if false, waits again for what is left of `timeout`. A signal
    wakes it too: its Python handler runs when this code resumes, and an
    exception the handler raises propagates out of the wait.

    Returns True once `ready()`, False on timeout, and None without waiting
    when descriptors cannot be used here (not the main thread, inside a model
    execution, or the application owns the signal wake-up fd): then the caller
    waits its ordinary way.
    """
    if not uses_fd_waits():
        return None
    deadline = None if timeout is None else time.monotonic() + timeout
    with WakeFd() as wake, signal_wakeup() as signal_fd:
        if signal_fd is None:
            return None
        waker = wake.set
        try:
            add_waker(waker)
            fds = (wake.fileno(), signal_fd)
            while not ready():
                if deadline is None:
                    remaining = None
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return ready()
                woken = wait_readable(fds, remaining)
                if signal_fd in woken:
                    _drain(signal_fd)  # the handler runs at the next bytecode, right here
                if wake.fileno() in woken:
                    wake.drain()
            return True
        finally:
            remove_waker(waker)
