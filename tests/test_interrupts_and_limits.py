"""Waits cut short by Ctrl-C leave every object usable; huge timeouts mean "forever".

A review found an interrupted `write()` leaving the RwLock locked forever, an
interrupted `upgrade()` leaking the upgradable lock, an interrupted Barrier
wait letting the others through one short, lifecycle waits poisoning their own
state, and `inf` timeouts overflowing the OS timer. The signal cases run in a
subprocess so a stray KeyboardInterrupt can never reach pytest itself.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
from sync_helpers import real_threads_only

import concurrency
from concurrency import sync
from concurrency.lifecycle import CancellationToken

INTERRUPTED_WAITS = textwrap.dedent("""
    import os, signal, threading, time
    from concurrency import sync
    from concurrency.lifecycle import Shutdown

    def interrupt_after(seconds):
        threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT)).start()

    def hold_read(rw, seconds, entered):
        with rw.read():
            entered.set()
            time.sleep(seconds)

    # 1. write() interrupted while a reader is inside: the lock stays usable.
    rw = sync.RwLock(0)
    entered = threading.Event()
    reader = threading.Thread(target=hold_read, args=(rw, 1.0, entered))
    reader.start(); entered.wait()
    interrupt_after(0.3)
    try:
        rw.write()
    except KeyboardInterrupt:
        pass
    reader.join()
    assert rw.try_write_for(5) is not None, "write lock lost after an interrupted write()"
    print("write ok")

    # 2. upgrade() interrupted: the guard still holds the upgradable read and releases it.
    rw = sync.RwLock(0)
    entered = threading.Event()
    reader = threading.Thread(target=hold_read, args=(rw, 1.0, entered))
    reader.start(); entered.wait()
    interrupt_after(0.3)
    upgradable = rw.upgradable_read()
    try:
        upgradable.upgrade()
    except KeyboardInterrupt:
        upgradable.unlock()
    reader.join()
    assert rw.try_upgradable_read() is not None, "upgradable lock leaked"
    print("upgrade ok")

    # 3. Barrier wait interrupted: the barrier breaks for everyone.
    barrier = sync.Barrier(3)
    interrupt_after(0.3)
    try:
        barrier.wait()
    except KeyboardInterrupt:
        pass
    assert barrier.broken and barrier.n_waiting == 0
    print("barrier ok")

    # 4. Shutdown.wait interrupted (Ctrl-C in a service's main loop): drain still works.
    shutdown = Shutdown()
    shutdown.subsystem("workers").spawn(lambda token: token.wait(), shutdown.root.child_token())
    interrupt_after(0.3)
    try:
        shutdown.wait()
    except KeyboardInterrupt:
        pass
    shutdown.root.cancel()
    assert all(result.clean for result in shutdown.drain())
    print("shutdown ok")
""")


@real_threads_only
def test_interrupted_waits_leave_objects_usable() -> None:
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_WAITS], capture_output=True, text=True, timeout=120,
        env={**os.environ, "CONCURRENCY_BACKEND": concurrency.backend()},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "write", "ok", "upgrade", "ok", "barrier", "ok", "shutdown", "ok",
    ]


@concurrency.test(iterations=1)
def test_infinite_timeouts_mean_wait_as_long_as_needed() -> None:
    mutex = sync.Mutex(0)
    guard = mutex.try_lock_for(math.inf)
    assert guard is not None
    guard.unlock()
    token = CancellationToken()
    token.cancel()
    assert token.wait(math.inf)
    tx, rx = sync.channel()
    tx.send(1)
    assert rx.recv_timeout(1e12) == 1


@concurrency.test(iterations=1)
def test_timed_semaphore_acquire_needs_a_number() -> None:
    with pytest.raises(TypeError, match=r"Semaphore\.try_acquire_for"):
        sync.Semaphore(1).try_acquire_for(None)  # type: ignore[arg-type]


@concurrency.test(iterations=1)
def test_condvar_refuses_a_guard_that_is_not_a_mutex_guard() -> None:
    rw = sync.RwLock(0)
    condvar = sync.Condvar()
    guard = rw.write()
    try:
        with pytest.raises(TypeError, match="needs a MutexGuard"):
            condvar.wait(guard)  # type: ignore[arg-type]
    finally:
        guard.unlock()
