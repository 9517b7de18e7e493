"""Ctrl-C landing inside a primitive leaves it consistent (review items 2 and 3).

Each case parks the main thread in one blocking operation, sends it SIGINT
from another thread (so the wait itself is interrupted, as a real Ctrl-C
would), and checks that the operation either took effect or had none: no lock,
reader count, permit, slot, message or barrier party is leaked, and a
`Condvar.wait*` comes back holding the mutex. The cases run in a subprocess so
a stray KeyboardInterrupt can never reach pytest itself; the random version
of all this is `test_interrupt_fuzzer.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from sync_helpers import real_threads_only

import concurrency

PRELUDE = textwrap.dedent("""
    import os, signal, threading, time
    from concurrency import sync

    MAIN = threading.get_ident()

    def interrupt_main_after(seconds):
        timer = threading.Timer(seconds, signal.pthread_kill, (MAIN, signal.SIGINT))
        timer.start()
        return timer

    def interrupted(operation, after=0.2):
        timer = interrupt_main_after(after)
        try:
            operation()
        except KeyboardInterrupt:
            timer.join()
            return True
        timer.join()
        return False

    def in_thread(fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        return t
""")

CASES = {
    # Item 2: the re-acquire of Condvar.wait interrupted while another thread holds the mutex.
    "condvar-reacquire": """
        m = sync.Mutex(0)
        cv = sync.Condvar()
        inside = []
        holding = threading.Event()
        release = threading.Event()

        def notify_and_hold():
            with m.lock() as g:
                cv.notify_all()
                holding.set()
                release.wait()           # main is now blocked re-acquiring m

        def third():
            with m.lock():
                inside.append("third")

        with m.lock() as g:
            t = in_thread(notify_and_hold)
            timer = None
            def wait():
                global timer
                timer = interrupt_main_after(0.4)
                cv.wait(g)
            try:
                threading.Timer(0.8, release.set).start()
                wait()
                raise AssertionError("the wait was not interrupted")
            except KeyboardInterrupt:
                pass
            assert m.is_locked(), "Condvar.wait raised without holding the mutex"
            late = in_thread(third)
            time.sleep(0.3)
            assert inside == [], "a third thread got into the mutex held by the interrupted waiter"
        late.join(10)
        t.join(10)
        assert inside == ["third"] and not m.is_locked()
    """,
    # Item 3: write() interrupted while queued behind a reader; readers must not stay blocked.
    "rwlock-write": """
        rw = sync.RwLock(0)
        entered, leave = threading.Event(), threading.Event()
        def reader():
            with rw.read():
                entered.set(); leave.wait()
        r = in_thread(reader); entered.wait()
        assert interrupted(rw.write)
        assert rw.try_read() is not None, "an interrupted write() kept new readers out"
        leave.set(); r.join(10)
        g = rw.try_write()
        assert g is not None, "an interrupted write() leaked the writer"
        g.unlock()
    """,
    "rwlock-read": """
        rw = sync.RwLock(0)
        entered, leave = threading.Event(), threading.Event()
        def writer():
            with rw.write():
                entered.set(); leave.wait()
        w = in_thread(writer); entered.wait()
        assert interrupted(rw.read)
        leave.set(); w.join(10)
        g = rw.try_write()
        assert g is not None, "an interrupted read() leaked a reader count"
        g.unlock()
    """,
    "rwlock-upgrade": """
        rw = sync.RwLock(0)
        entered, leave = threading.Event(), threading.Event()
        def reader():
            with rw.read():
                entered.set(); leave.wait()
        r = in_thread(reader); entered.wait()
        u = rw.upgradable_read()
        assert interrupted(u.upgrade)
        assert rw.try_upgradable_read() is None, "the upgradable guard was lost by the interrupt"
        u.unlock()
        leave.set(); r.join(10)
        g = rw.try_write()
        assert g is not None, "an interrupted upgrade() leaked the lock"
        g.unlock()
    """,
    "mutex-lock": """
        m = sync.Mutex(0)
        entered = threading.Event()
        def hold_then_release():
            with m.lock():
                entered.set(); time.sleep(0.6)
        t = in_thread(hold_then_release); entered.wait()
        assert interrupted(m.lock)
        t.join(10)
        assert not m.is_locked(), "an interrupted lock() kept or leaked the lock"
    """,
    "dropped-guards": """
        m = sync.Mutex(1)
        assert m.lock().value == 1
        assert not m.is_locked(), "m.lock().value left the Mutex locked"
        g = m.lock(); del g
        assert not m.is_locked(), "a dropped MutexGuard kept the Mutex locked"
        rw = sync.RwLock(1)
        rw.write().value; rw.read().value; rw.upgradable_read().value
        g = rw.try_write()
        assert g is not None, "a dropped RwLock guard kept the lock"
        g.unlock()
        s = sync.Semaphore(1)
        s.acquire()
        assert s.available() == 1, "a dropped SemaphoreGuard kept its permit"
    """,
    "semaphore-acquire": """
        s = sync.Semaphore(1)
        g = s.acquire()
        assert interrupted(s.acquire)
        g.unlock()
        assert s.available() == 1, "an interrupted acquire() lost or took a permit"
    """,
    "channel-send": """
        tx, rx = sync.sync_channel(1)
        tx.send("first")
        assert interrupted(lambda: tx.send("second"))
        assert rx.recv() == "first"
        try:
            got = rx.try_recv()
            raise AssertionError(f"the interrupted send delivered {got!r}")
        except sync.Empty:
            pass
        tx.send("third")                      # the slot came back
        assert rx.recv() == "third"
    """,
    "channel-recv": """
        tx, rx = sync.sync_channel(1)
        assert interrupted(rx.recv)
        tx.send("after")
        assert rx.recv_timeout(5) == "after", "an interrupted recv() swallowed a message"
    """,
    "rendezvous-send": """
        tx, rx = sync.sync_channel(0)
        assert interrupted(lambda: tx.send("withdrawn"))
        def late_send():
            tx.send("kept")
        t = in_thread(late_send)
        assert rx.recv_timeout(5) == "kept", "an interrupted rendezvous send left its message behind"
        t.join(10)
    """,
    "barrier-wait": """
        b = sync.Barrier(2)
        assert interrupted(b.wait)
        assert b.n_waiting == 0, "the interrupted party is still counted"
        b.reset()
        results = []
        t = in_thread(lambda: results.append(b.wait(timeout=10).is_leader))
        results.append(b.wait(timeout=10).is_leader)
        t.join(10)
        assert sorted(results) == [False, True], f"a clean round after the interrupt gave {results}"
    """,
    "oncelock-waiter": """
        cell = sync.OnceLock()
        started, finish = threading.Event(), threading.Event()
        def slow_init():
            started.set(); finish.wait(); raise ValueError("winner failed")
        def winner():
            try:
                cell.get_or_init(slow_init)
            except ValueError:
                pass
        t = in_thread(winner); started.wait()
        assert interrupted(lambda: cell.get_or_init(lambda: "mine"))
        finish.set(); t.join(10)
        assert cell.get() is None
        assert cell.get_or_init(lambda: "after") == "after", "the cell is stuck after an interrupt"
    """,
}


def run_case(source: str) -> subprocess.CompletedProcess[str]:
    script = PRELUDE + textwrap.dedent(source) + "\nprint('ok')\n"
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**os.environ, "CONCURRENCY_BACKEND": concurrency.backend()},
    )


@real_threads_only
@pytest.mark.parametrize("case", sorted(CASES))
def test_an_interrupted_operation_leaves_the_primitive_consistent(case: str) -> None:
    result = run_case(CASES[case])
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), (
        f"{case}:\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


@real_threads_only
def test_a_guard_lent_to_a_condvar_wait_cannot_be_released_by_another_thread() -> None:
    """Review finding: releasing a waiting thread's guard from elsewhere left the Mutex
    locked for good on `fast` (or let two threads in); it is refused on every backend."""
    import threading
    import time

    from concurrency import sync

    m = sync.Mutex(0)
    cv = sync.Condvar()
    lent: list[object] = []
    waiting = threading.Event()

    def waiter() -> None:
        with m.lock() as g:
            lent.append(g)
            waiting.set()
            cv.wait_timeout(g, 0.5)

    t = threading.Thread(target=waiter)
    t.start()
    assert waiting.wait(10)
    time.sleep(0.1)  # the waiter is parked in its wait now
    with pytest.raises(RuntimeError):
        lent[0].unlock()  # type: ignore[attr-defined]
    t.join(10)
    assert not m.is_locked(), "the waiter's `with` did not release the mutex"
