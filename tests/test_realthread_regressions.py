"""Regressions from the review of the real-thread backends (and the model where they must agree).

- A send blocked on a full channel whose own `Sender` is closed meanwhile raised
  nothing and delivered later, or hung: it must raise `Disconnected`, and a send
  that returns normally has delivered (item 1).
- `JoinHandle.join()` interrupted by Ctrl-C made a running thread look finished
  (CPython 3.11's `Thread.join`), and `thread.scope()` swallowed the interrupt
  into its exception group (item 4).
- `try_read()` by a thread holding a read guard gave a guard on `fast` but None
  on `threading` and in the model: every `try_*` now reports the lock's state,
  whichever thread asks (item 5).
- The pure-Python classes no longer rely on the GIL; where a free-threaded
  interpreter is available they are hammered on it with the GIL off.

The signal cases run in a subprocess so a stray KeyboardInterrupt can never
reach pytest itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sync_helpers import JOIN_TIMEOUT, real_threads_only

import concurrency
from concurrency import sync, thread

CHECKED = ("threading", "random", "pct", "dfs")  # backends that refuse deadlocking re-entry


def run_script(source: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `source` in a fresh interpreter on this process's backend."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
        timeout=120, env={**os.environ, "CONCURRENCY_BACKEND": concurrency.backend(), **env},
    )


# --------------------------------------------------------------------------- channels (item 1)


@concurrency.test
def test_send_blocked_on_a_full_channel_raises_when_its_sender_closes() -> None:
    tx, rx = sync.sync_channel(1)
    tx.send("first")

    def send_second() -> str:
        try:
            tx.send("second")
        except sync.Disconnected:
            return "disconnected"
        return "sent"

    handle = thread.spawn(send_second)
    thread.sleep(0.05)  # on real threads, let it block on the full channel
    tx.close()
    assert rx.recv() == "first"
    with pytest.raises(sync.Disconnected):
        rx.recv()  # "second" was never delivered...
    assert handle.join(JOIN_TIMEOUT) == "disconnected"  # ...and its send said so


@pytest.mark.parametrize("bound", [0, 1, 2, None])
@concurrency.test
def test_a_send_that_returns_normally_has_delivered(bound: int | None) -> None:
    tx, rx = sync.channel() if bound is None else sync.sync_channel(bound)
    delivered: list[int] = []

    def produce() -> None:
        for i in range(3):
            try:
                tx.send(i)
            except sync.Disconnected:
                return
            delivered.append(i)

    handle = thread.spawn(produce)
    thread.sleep(0.01)
    tx.close()  # closes the producer's Sender while it may be blocked in send
    received = list(rx)
    handle.join(JOIN_TIMEOUT)
    assert received == delivered


@concurrency.test
def test_closing_one_clone_does_not_disturb_a_send_blocked_on_another() -> None:
    tx, rx = sync.sync_channel(1)
    other = tx.clone()
    tx.send("first")
    handle = thread.spawn(tx.send, "second")
    thread.sleep(0.05)
    other.close()  # not the blocked send's Sender: it keeps waiting for room
    assert rx.recv() == "first"
    assert rx.recv() == "second"
    handle.join(JOIN_TIMEOUT)
    tx.close()
    with pytest.raises(sync.Disconnected):
        rx.recv()


# --------------------------------------------------------------------------- try_* report the state (item 5)


@concurrency.test(iterations=1)
def test_try_acquires_by_a_reader_report_the_state() -> None:
    rw = sync.RwLock("v")
    with rw.read():
        second = rw.try_read()
        assert second is not None and second.value == "v"
        second.unlock()
        upgradable = rw.try_upgradable_read()  # an upgradable reader shares with readers
        assert upgradable is not None
        upgradable.unlock()
        assert rw.try_write() is None


@concurrency.test(iterations=1)
def test_try_acquires_by_an_upgradable_reader_or_writer_report_the_state() -> None:
    rw = sync.RwLock(0)
    with rw.upgradable_read():
        reader = rw.try_read()
        assert reader is not None
        reader.unlock()
        assert rw.try_upgradable_read() is None
        assert rw.try_write() is None
    with rw.write():
        assert rw.try_read() is None
        assert rw.try_upgradable_read() is None
        assert rw.try_write() is None
    with rw.try_write() as writer:  # type: ignore[union-attr]  # free again
        writer.value = 1


@concurrency.test(backends=CHECKED, iterations=1)
def test_upgrade_while_holding_a_read_guard_is_refused() -> None:
    rw = sync.RwLock(0, name="table")
    upgradable = rw.upgradable_read()
    reader = rw.try_read()
    assert reader is not None
    with pytest.raises(RuntimeError, match=r"table: .* upgrade .* read guard"):
        upgradable.upgrade()  # it would wait for its own reader forever
    reader.unlock()
    with upgradable.upgrade() as writer:  # the refusal changed nothing
        writer.value = 1
    with rw.read() as guard:
        assert guard.value == 1


# --------------------------------------------------------------------------- join and scope (item 4)


JOIN_INTERRUPTED = """
    import _thread, signal, threading, time
    from concurrency import thread

    main = threading.main_thread().ident

    def after(seconds, fn, *args):
        timer = threading.Timer(seconds, fn, args)
        timer.daemon = True
        timer.start()

    def report(handle):
        print("finished", handle.is_finished())
        try:
            print("join returned", handle.join(0.05))
        except TimeoutError:
            print("still running")

    release = threading.Event()
    handle = thread.spawn(release.wait, 60, name="blocked")

    # 1. A SIGINT interrupts an untimed join.
    after(0.3, signal.pthread_kill, main, signal.SIGINT)
    try:
        handle.join()
        print("join returned")
    except KeyboardInterrupt:
        print("interrupted")
    report(handle)

    # 2. interrupt_main() while a timed join waits: it surfaces when the wait ends.
    after(0.1, _thread.interrupt_main)
    try:
        try:
            handle.join(0.5)
            print("join returned")
        except TimeoutError:
            time.sleep(5)  # the pending interrupt surfaces here at the latest
    except KeyboardInterrupt:
        print("interrupted")
    report(handle)

    release.set()
    print("result", handle.join(30))
"""


@real_threads_only
def test_an_interrupted_join_never_reports_a_running_thread_finished() -> None:
    done = run_script(JOIN_INTERRUPTED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "interrupted", "finished False", "still running",
        "interrupted", "finished False", "still running",
        "result True",
    ]


SCOPE_INTERRUPTED = """
    import _thread, signal, threading, time
    from concurrency import thread

    main = threading.main_thread().ident

    def after(seconds, fn, *args):
        timer = threading.Timer(seconds, fn, args)
        timer.daemon = True
        timer.start()

    # 1. A SIGINT while the scope joins: it propagates as itself, the thread runs on.
    release = threading.Event()
    handles = []
    after(0.3, signal.pthread_kill, main, signal.SIGINT)
    try:
        with thread.scope() as s:
            handles.append(s.spawn(release.wait, 60))
        print("scope returned")
    except KeyboardInterrupt:
        print("scope interrupted")
    except BaseExceptionGroup as group:
        print("grouped", group.exceptions)
    print("left running", not handles[0].is_finished())
    release.set()
    print("result", handles[0].join(30))

    # 2. The interrupt surfaces just as the first thread finishes (interrupt_main only
    # lands when the wait returns): it is still not taken for that thread's exception.
    first, second = threading.Event(), threading.Event()

    def interrupt_then_finish():
        _thread.interrupt_main()
        first.set()

    handles = []
    after(0.3, interrupt_then_finish)
    try:
        with thread.scope() as s:
            handles.append(s.spawn(first.wait, 60))
            handles.append(s.spawn(second.wait, 60))
        print("scope returned")
    except KeyboardInterrupt:
        print("scope interrupted")
    except BaseExceptionGroup as group:
        print("grouped", group.exceptions)
    print("left running", not handles[1].is_finished())
    second.set()
    print("results", handles[0].join(30), handles[1].join(30))
"""


@real_threads_only
def test_scope_never_swallows_a_keyboard_interrupt() -> None:
    done = run_script(SCOPE_INTERRUPTED)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "scope interrupted", "left running True", "result True",
        "scope interrupted", "left running True", "results True True",
    ]


@concurrency.test(backends=("threading", "fast"), iterations=1)
def test_scope_still_groups_the_threads_own_keyboard_interrupts() -> None:
    def crash() -> None:
        raise KeyboardInterrupt("raised by the thread itself")

    with pytest.raises(BaseExceptionGroup) as caught, thread.scope() as s:
        s.spawn(crash)
    (error,) = caught.value.exceptions
    assert isinstance(error, KeyboardInterrupt) and "itself" in str(error)


# --------------------------------------------------------------------------- the pure-Python classes


PURE_CONDVAR_RETAKE = """
    import signal, threading, time
    from concurrency import sync

    main = threading.main_thread().ident
    m = sync.Mutex(0, name="m")
    cv = sync.Condvar()
    holding, retaking = threading.Event(), threading.Event()

    def notify_and_hold():
        with m.lock():
            cv.notify_all()
            holding.set()
            time.sleep(0.3)  # the main thread is now blocked taking the mutex back
            signal.pthread_kill(main, signal.SIGINT)
            time.sleep(0.3)  # the interrupt must wait for this release
            print("released")

    t = threading.Thread(target=notify_and_hold)
    try:
        with m.lock() as g:
            t.start()
            try:
                cv.wait(g)
                print("wait returned")
            except KeyboardInterrupt:
                print("interrupted, holding", m.is_locked(), g.value)
                raise
    except KeyboardInterrupt:
        print("poisoned", m.is_poisoned())
    t.join(30)
    m.clear_poison()
    with m.lock() as g:
        print("relocked", g.value)
"""


@real_threads_only
def test_pure_condvar_wait_takes_the_mutex_back_before_raising() -> None:
    done = run_script(PURE_CONDVAR_RETAKE, CONCURRENCY_PURE_PYTHON="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "released", "interrupted, holding True 0", "poisoned True", "relocked 0",
    ]


PURE_DROPPED_GUARDS = """
    import warnings
    import concurrency
    from concurrency import sync

    warnings.simplefilter("always", ResourceWarning)
    with warnings.catch_warnings(record=True) as caught:
        m = sync.Mutex(1, name="m")
        assert m.lock().value == 1
        print("mutex", m.is_locked())
        rw = sync.RwLock(1, name="rw")
        rw.write().value; rw.read().value; rw.upgradable_read().value
        guard = rw.try_write()
        print("rwlock", guard is not None)
        guard.unlock()
        s = sync.Semaphore(1, name="s")
        s.acquire()
        print("semaphore", s.available())
    messages = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    named = sum(1 for text in messages if "was dropped while held" in text and "<string>:" in text)
    print("warnings", named)
"""


@pytest.mark.parametrize(("backend", "warned"), [("fast", 0), ("threading", 5)])
@real_threads_only
def test_pure_guards_dropped_while_held_release(backend: str, warned: int) -> None:
    done = run_script(PURE_DROPPED_GUARDS, CONCURRENCY_PURE_PYTHON="1", CONCURRENCY_BACKEND=backend)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "mutex", "False", "rwlock", "True", "semaphore", "1", "warnings", str(warned),
    ]


# --------------------------------------------------------------------------- without the GIL


def free_threaded_python() -> str | None:
    """A free-threaded CPython (GIL disabled), if one was built (see .ci/freethreaded-python)."""
    cache = os.environ.get(
        "CONCURRENCY_FT_CACHE", str(Path.home() / ".cache" / "concurrency-ci" / "python3.13t")
    )
    candidate = Path(cache, "bin", "python3.13t")
    if candidate.exists():
        return str(candidate)
    return shutil.which("python3.13t")


NO_GIL_HAMMER = """
    import sys, threading
    from concurrency import sync, thread
    from concurrency.sync import atomic
    from concurrency.lifecycle import wait_any

    assert not sys._is_gil_enabled(), "importing concurrency turned the GIL back on"
    THREADS, ROUNDS = 4, 2000

    # RwLock: writers never overlap anything; readers see whole updates.
    rw = sync.RwLock([0, 0])
    torn = atomic.AtomicInt(0)

    def rw_worker(n):
        for i in range(ROUNDS):
            if i % 4 == n % 4:
                with rw.write() as g:
                    a, b = g.value
                    g.value = [a + 1, b + 1]
            elif i % 7 == 0:
                u = rw.upgradable_read()
                w = u.upgrade()
                a, b = w.value
                w.value = [a + 1, b + 1]
                w.downgrade().unlock()
            else:
                with rw.read() as g:
                    a, b = g.value
                    if a != b:
                        torn.fetch_add(1)

    with thread.scope() as s:
        for n in range(THREADS):
            s.spawn(rw_worker, n)
    with rw.read() as g:
        writes = g.value[0]
    assert torn.load() == 0
    print("rwlock", writes > 0)

    # Channels of every kind: nothing lost or duplicated; wait_any never misses a wakeup.
    for bound in (None, 0, 1, 8):
        tx, rx = sync.channel() if bound is None else sync.sync_channel(bound)

        def produce(sender, base):
            with sender:
                for i in range(ROUNDS // 4):
                    sender.send(base + i)

        handles = [thread.spawn(produce, tx.clone(), k * 100000) for k in range(THREADS)]
        tx.close()
        got = []
        while True:
            assert wait_any(rx, timeout=30) == [rx]
            try:
                got.append(rx.recv())
            except sync.Disconnected:
                break
        for h in handles:
            h.join(30)
        expected = sorted(k * 100000 + i for k in range(THREADS) for i in range(ROUNDS // 4))
        assert sorted(got) == expected, bound
    print("channels", True)

    # Atomics, OnceLock, Semaphore, Barrier, Condvar.
    counter = atomic.AtomicInt(0)
    cell = sync.OnceLock()
    inits = atomic.AtomicInt(0)
    sem = sync.Semaphore(2)
    inside = atomic.AtomicInt(0)
    barrier = sync.Barrier(THREADS)
    leaders = atomic.AtomicInt(0)
    box = sync.Mutex(0)
    cond = sync.Condvar()

    def init():
        inits.fetch_add(1)
        return "ready"

    def mixed(n):
        for _ in range(ROUNDS):
            counter.fetch_add(1)
        assert cell.get_or_init(init) == "ready"
        for _ in range(200):
            with sem.acquire():
                assert inside.fetch_add(1) < 2
                inside.fetch_sub(1)
        if barrier.wait().is_leader:
            leaders.fetch_add(1)
        with box.lock() as g:
            g.value += 1
            cond.notify_all()
            cond.wait_while(g, lambda v: v < THREADS)

    with thread.scope() as s:
        for n in range(THREADS):
            s.spawn(mixed, n)
    assert counter.load() == THREADS * ROUNDS and inits.load() == 1 and leaders.load() == 1
    print("others", True)
"""


@real_threads_only
def test_the_pure_python_classes_hold_without_the_gil() -> None:
    python = free_threaded_python()
    if python is None:
        pytest.skip("no free-threaded CPython here (.ci/freethreaded-python builds one)")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [python, "-c", textwrap.dedent(NO_GIL_HAMMER)], capture_output=True, text=True,
        timeout=300,
        env={**os.environ, "CONCURRENCY_BACKEND": concurrency.backend(), "PYTHONPATH": str(root),
             "CONCURRENCY_PURE_PYTHON": "1", "PYTHON_GIL": "0"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["rwlock", "True", "channels", "True", "others", "True"]


@real_threads_only
def test_guards_and_channel_ends_cannot_be_copied_or_pickled() -> None:
    """A copied guard could release another holder's lock: refused on every implementation."""
    import copy
    import pickle

    held = [sync.Mutex(0).lock(), sync.RwLock(0).read(), sync.RwLock(0).write(),
            sync.Semaphore(1).acquire(), *sync.channel()]
    for obj in held:
        with pytest.raises(TypeError):
            copy.copy(obj)
        with pytest.raises(TypeError):
            pickle.dumps(obj)
