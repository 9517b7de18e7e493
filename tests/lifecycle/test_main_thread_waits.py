"""The main thread's lifecycle waits park on file descriptors that signals wake.

On free-threaded CPython a main thread blocked in a lock acquire may never run
a signal's Python handler; the lifecycle waits therefore park the main thread
in `poll()` on a wake fd and the signal wake-up fd (`concurrency.lifecycle._fdwait`).
These tests check that a handler runs at once during each wait, that the wait
does not spin, and that it cleans up after itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lifecycle_helpers import Child, process_level, real_threads_only

from concurrency import sync
from concurrency.lifecycle import CancellationToken, Service, Shutdown, TaskTracker, wait_any
from concurrency.lifecycle._fdwait import WakeFd, signal_wakeup, uses_fd_waits, wait_readable

on_main_thread = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="the descriptor waits are the main thread's; this test runner is not on it",
)


def _open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd")) if os.path.isdir("/proc") else 0


def _wakeup_fd_now() -> int:
    """The signal wake-up fd currently set (-1 for none), leaving it in place."""
    fd = signal.set_wakeup_fd(-1)
    if fd != -1:
        signal.set_wakeup_fd(fd)
    return fd


# --------------------------------------------------------------------------- the building blocks


def test_wake_fd_is_readable_once_set_until_drained() -> None:
    with WakeFd() as wake:
        assert wait_readable([wake.fileno()], 0) == []
        wake.set()
        wake.set()
        assert wait_readable([wake.fileno()], 0) == [wake.fileno()]
        wake.drain()
        assert wait_readable([wake.fileno()], 0) == []
    wake.set()  # after close: does nothing (the number may belong to another file by now)
    wake.close()  # idempotent
    assert "closed" in repr(wake)


def test_wait_readable_times_out() -> None:
    with WakeFd() as wake:
        start = time.monotonic()
        assert wait_readable([wake.fileno()], 0.05) == []
        assert time.monotonic() - start >= 0.04


@on_main_thread
def test_signal_wakeup_installs_and_restores() -> None:
    assert _wakeup_fd_now() == -1
    with signal_wakeup() as fd:
        assert fd is not None
        assert _wakeup_fd_now() != -1
    assert _wakeup_fd_now() == -1


@on_main_thread
def test_signal_wakeup_leaves_an_applications_fd_alone() -> None:
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write)
    try:
        with signal_wakeup() as fd:
            assert fd is None
            assert _wakeup_fd_now() == write
        assert _wakeup_fd_now() == write
    finally:
        signal.set_wakeup_fd(-1)
        os.close(read)
        os.close(write)


def test_other_threads_keep_their_ordinary_wait() -> None:
    seen: list[bool] = []
    worker = threading.Thread(target=lambda: seen.append(uses_fd_waits()))
    worker.start()
    worker.join()
    assert seen == [False]


# --------------------------------------------------------------------------- in this process


def _cancel_soon(token: CancellationToken, delay: float = 0.05) -> threading.Timer:
    timer = threading.Timer(delay, token.cancel)
    timer.start()
    return timer


@pytest.fixture
def leaves_no_trace() -> Iterator[None]:
    """The wait closes its descriptors and leaves no signal wake-up fd behind."""
    with signal_wakeup():  # makes the process's signal pipe, which is kept for later waits
        pass
    before = _open_fds()
    yield
    assert _wakeup_fd_now() == -1
    assert _open_fds() == before


@real_threads_only
@on_main_thread
@pytest.mark.usefixtures("leaves_no_trace")
def test_main_thread_waits_are_woken_by_another_thread() -> None:
    token = CancellationToken()
    timer = _cancel_soon(token)
    assert token.wait(timeout=30) is True
    timer.join()

    tracker = TaskTracker()
    gate = CancellationToken()
    tracker.spawn(gate.wait)
    tracker.close()
    timer = _cancel_soon(gate)
    assert tracker.wait(timeout=30) is True
    timer.join()

    token, other = CancellationToken(), CancellationToken()
    timer = _cancel_soon(other)
    assert wait_any(token, other, timeout=30) == [other]
    timer.join()


@real_threads_only
@on_main_thread
@pytest.mark.usefixtures("leaves_no_trace")
def test_main_thread_waits_time_out() -> None:
    start = time.monotonic()
    assert CancellationToken().wait(timeout=0.1) is False
    assert wait_any(CancellationToken(), timeout=0.1) == []
    assert TaskTracker().wait(timeout=0.1) is False
    assert time.monotonic() - start >= 0.25


@real_threads_only
@on_main_thread
def test_an_applications_wakeup_fd_means_the_ordinary_wait() -> None:
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write)
    try:
        token = CancellationToken()
        timer = _cancel_soon(token)
        assert token.wait(timeout=30) is True
        timer.join()
        assert _wakeup_fd_now() == write
    finally:
        signal.set_wakeup_fd(-1)
        os.close(read)
        os.close(write)


class _Idle(Service):
    def serve(self) -> None:
        self.token.wait()


def _parked(kind: str) -> tuple[Callable[[], object], Callable[[], None]]:
    """A main-thread wait of `kind` that lasts until the wake function is called."""
    if kind == "token":
        token = CancellationToken()
        return lambda: token.wait(timeout=1.0), token.cancel
    if kind == "shutdown":
        shutdown = Shutdown()
        return lambda: shutdown.wait(timeout=1.0), shutdown.root.cancel
    if kind == "tracker":
        tracker = TaskTracker()
        return lambda: tracker.wait(timeout=1.0), tracker.close
    if kind == "wait_any":
        token = CancellationToken()
        sender, receiver = sync.channel()
        return lambda: wait_any(token, receiver, timeout=1.0), lambda: (token.cancel(), sender.close())
    service = _Idle()
    service.start()
    return lambda: service.wait(timeout=1.0), service.stop


@real_threads_only
@on_main_thread
@pytest.mark.parametrize("kind", ["token", "shutdown", "tracker", "wait_any", "service"])
def test_a_parked_main_thread_does_not_spin(kind: str) -> None:
    wait, wake = _parked(kind)
    cpu, wall = time.process_time(), time.monotonic()
    wait()  # times out after 1 s
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    wake()
    assert wall >= 0.9
    assert cpu < 0.1, f"{cpu:.3f}s of CPU while parked {wall:.2f}s"


# --------------------------------------------------------------------------- signals, in a child

HANDLER_SCRIPT = """
    import os, signal, sys, threading, time
    from concurrency import sync
    from concurrency.lifecycle import CancellationToken, Service, Shutdown, TaskTracker, wait_any

    kind = os.environ["KIND"]
    token = CancellationToken()
    if kind == "shutdown":
        shutdown = Shutdown()
        token = shutdown.root
        wait = shutdown.wait
    elif kind == "tracker":
        tracker = TaskTracker()
        tracker.spawn(token.wait)
        tracker.close()
        wait = tracker.wait
    elif kind == "wait_any":
        keep, receiver = sync.channel()
        wait = lambda: wait_any(receiver, token) == [token]
    elif kind == "service":
        class Idle(Service):
            def serve(self):
                self.token.wait()
        service = Idle(parent=token)
        service.start()
        wait = service.wait
    else:
        wait = token.wait

    def handler(signum, frame):
        print("handler", signal.Signals(signum).name, flush=True)
        token.cancel()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    # Other threads parked too, as in a real program: the OS may deliver the signal to one.
    for _ in range(3):
        threading.Thread(target=CancellationToken().wait, daemon=True).start()
    print("ready", flush=True)
    start = time.monotonic()
    print("returned", wait(), flush=True)
    print("seconds", round(time.monotonic() - start, 3), flush=True)
    assert signal.set_wakeup_fd(-1) == -1, "the wait left its wake-up fd installed"
"""


def _script(tmp_path: Path) -> str:
    import textwrap

    path = tmp_path / "handler.py"
    path.write_text(textwrap.dedent(HANDLER_SCRIPT))
    return str(path)


@process_level
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", ["token", "shutdown", "tracker", "wait_any", "service"])
def test_a_signal_handler_runs_at_once_while_the_main_thread_waits(
    tmp_path: Path, kind: str, signum: int
) -> None:
    child = Child([_script(tmp_path)], tmp_path / "stderr.txt", KIND=kind)
    try:
        child.wait_for_line("ready")
        time.sleep(0.3)  # let it park
        sent = time.monotonic()
        child.process.send_signal(signum)
        child.wait_for_line("returned True", timeout=30)
        latency = time.monotonic() - sent
        assert child.finish(timeout=30) == 0, child.stderr()
    finally:
        child.kill()
    assert child.lines[1] == f"handler {signal.Signals(signum).name}", child.lines
    assert latency < 10, f"the handler ran {latency:.1f}s after the signal"


@process_level
def test_ctrl_c_interrupts_a_parked_main_thread(tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(
        "import signal\n"
        "from concurrency.lifecycle import CancellationToken\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    CancellationToken().wait()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', signal.set_wakeup_fd(-1), flush=True)\n"
    )
    child = Child([str(script)], tmp_path / "stderr.txt")
    try:
        child.wait_for_line("ready")
        time.sleep(0.3)
        child.process.send_signal(signal.SIGINT)
        assert child.finish(timeout=30) == 0, child.stderr()
    finally:
        child.kill()
    assert child.lines == ["ready", "interrupted -1"]
