"""`concurrency.sync.RwLock`: shared reads, exclusive writes, upgradable reads.

Guards of one lock are held by different threads here: the checked backend
refuses a thread that asks for a second guard of a lock it already holds.
"""

from __future__ import annotations

import math
import threading
import time

import pytest
from sync_helpers import JOIN_TIMEOUT, real_threads_only, settle, wait_until

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic


def probe(rw: sync.RwLock[object], method: str) -> bool:
    """From another thread: does `rw.<method>()` (a try_*) succeed right now?"""

    def attempt() -> bool:
        guard = getattr(rw, method)()
        if guard is None:
            return False
        guard.unlock()
        return True

    result: bool = thread.spawn(attempt).join(JOIN_TIMEOUT)
    return result


TRIES = ("try_read", "try_write", "try_upgradable_read")


def probe_all(rw: sync.RwLock[object]) -> dict[str, bool]:
    return {method: probe(rw, method) for method in TRIES}


# --------------------------------------------------------------------------- one thread


@concurrency.test(iterations=1)
def test_read_write_values() -> None:
    rw = sync.RwLock({"k": 1})
    with rw.read() as guard:
        assert guard.value == {"k": 1}
    with rw.write() as guard:
        guard.value = {"k": 2}
    with rw.upgradable_read() as guard:
        assert guard.value == {"k": 2}
    assert sync.RwLock().try_read().value is None  # type: ignore[union-attr]


@concurrency.test(iterations=1)
def test_facade_types() -> None:
    rw = sync.RwLock(0)
    assert isinstance(rw, sync.RwLock)
    with rw.read() as r:
        assert isinstance(r, sync.ReadGuard)
    with rw.write() as w:
        assert isinstance(w, sync.WriteGuard)
    with rw.upgradable_read() as u:
        assert isinstance(u, sync.UpgradableReadGuard)
        w = u.upgrade()
        assert isinstance(w, sync.WriteGuard)
        r = w.downgrade()
        assert isinstance(r, sync.ReadGuard)
        r.unlock()


@concurrency.test(iterations=1)
def test_read_guard_value_is_read_only() -> None:
    rw = sync.RwLock(1)
    with rw.read() as guard, pytest.raises(AttributeError):
        guard.value = 2  # type: ignore[misc]
    with rw.upgradable_read() as guard, pytest.raises(AttributeError):
        guard.value = 2  # type: ignore[misc]
    with rw.read() as guard:
        assert guard.value == 1


@pytest.mark.parametrize("kind", ["read", "write", "upgradable_read"])
@concurrency.test(iterations=1)
def test_released_guards_refuse_a_second_release(kind: str) -> None:
    rw = sync.RwLock(0)
    guard = getattr(rw, kind)()
    guard.unlock()
    with pytest.raises(RuntimeError, match="already released"):
        guard.unlock()
    with rw.write():  # nothing left held
        pass


@concurrency.test(iterations=1)
def test_upgrade_and_downgrade_consume_the_old_guard() -> None:
    rw = sync.RwLock(0)
    upgradable = rw.upgradable_read()
    writer = upgradable.upgrade()
    with pytest.raises(RuntimeError):
        upgradable.unlock()
    with pytest.raises(RuntimeError):
        upgradable.upgrade()
    reader = writer.downgrade()
    with pytest.raises(RuntimeError):
        writer.unlock()
    with pytest.raises(RuntimeError):
        writer.downgrade()
    reader.unlock()
    guard = rw.try_write()
    assert guard is not None
    guard.unlock()


@concurrency.test(iterations=1)
def test_names() -> None:
    assert sync.RwLock(name="table").name == "table"
    assert sync.RwLock().name != sync.RwLock().name


@pytest.mark.parametrize("method", ["try_read_for", "try_write_for"])
@pytest.mark.parametrize("bad", [-1, math.nan])
@concurrency.test(iterations=1)
def test_timed_acquires_reject_bad_timeouts(method: str, bad: float) -> None:
    with pytest.raises(ValueError, match=method):
        getattr(sync.RwLock(), method)(bad)


# --------------------------------------------------------------------------- who may enter


@concurrency.test
def test_readers_share_and_exclude_writers() -> None:
    rw = sync.RwLock(0)
    with rw.read():
        assert probe_all(rw) == {"try_read": True, "try_write": False, "try_upgradable_read": True}
        assert thread.spawn(rw.try_write_for, 0.01).join() is None


@concurrency.test
def test_writer_excludes_everyone() -> None:
    rw = sync.RwLock(0)
    with rw.write():
        assert probe_all(rw) == {"try_read": False, "try_write": False, "try_upgradable_read": False}
        assert thread.spawn(rw.try_read_for, 0.01).join() is None


@concurrency.test
def test_upgradable_read_coexists_with_readers_only() -> None:
    """At most one upgradable guard; plain readers come and go beside it."""
    rw = sync.RwLock(0)
    with rw.upgradable_read():
        assert probe_all(rw) == {"try_read": True, "try_write": False, "try_upgradable_read": False}


@concurrency.test
def test_downgraded_writer_admits_readers_not_writers() -> None:
    rw = sync.RwLock(0)
    reader = rw.write().downgrade()
    assert probe_all(rw) == {"try_read": True, "try_write": False, "try_upgradable_read": True}
    reader.unlock()
    assert probe(rw, "try_write")


@concurrency.test
def test_second_upgradable_waits_for_the_first() -> None:
    rw = sync.RwLock(0)
    inside = atomic.AtomicBool(False)

    def second() -> None:
        with rw.upgradable_read():
            inside.store(True)

    first = rw.upgradable_read()
    handle = thread.spawn(second)
    assert not inside.load()
    first.unlock()
    handle.join(JOIN_TIMEOUT)
    assert inside.load()


# --------------------------------------------------------------------------- atomicity


@concurrency.test
def test_upgrade_is_atomic() -> None:
    """Read-then-upgrade increments are never lost: no writer gets in between."""
    rw = sync.RwLock(0)

    def increment() -> None:
        with rw.upgradable_read() as guard:
            seen = guard.value
            thread.yield_now()
            with guard.upgrade() as writer:
                assert writer.value == seen
                writer.value = seen + 1

    def overwrite() -> None:
        with rw.write() as writer:
            writer.value += 10

    with thread.scope() as s:
        s.spawn(increment)
        s.spawn(increment)
        s.spawn(overwrite)
    with rw.read() as guard:
        assert guard.value == 12


@concurrency.test
def test_upgrade_waits_for_plain_readers() -> None:
    rw = sync.RwLock("start")
    tx, rx = sync.channel()
    reading = atomic.AtomicBool(False)

    def reader() -> None:
        with rw.read() as guard:
            reading.store(True)
            tx.send("in")
            thread.yield_now()
            assert guard.value == "start"  # the upgrader cannot write under us
            reading.store(False)

    with rw.upgradable_read() as upgradable:
        handle = thread.spawn(reader)
        assert rx.recv() == "in"
        with upgradable.upgrade() as writer:
            assert not reading.load()
            writer.value = "written"
    handle.join(JOIN_TIMEOUT)


@concurrency.test
def test_downgrade_is_atomic() -> None:
    """What a writer wrote is what it reads after downgrading: no writer slips in."""
    rw = sync.RwLock(None)

    def write_then_read(tag: str) -> None:
        writer = rw.write()
        writer.value = tag
        with writer.downgrade() as reader:
            thread.yield_now()
            assert reader.value == tag

    with thread.scope() as s:
        s.spawn(write_then_read, "a")
        s.spawn(write_then_read, "b")


@concurrency.test
def test_writers_exclude_each_other() -> None:
    rw = sync.RwLock(0)

    def bump() -> None:
        for _ in range(2):
            with rw.write() as guard:
                seen = guard.value
                thread.yield_now()
                guard.value = seen + 1

    with thread.scope() as s:
        s.spawn(bump)
        s.spawn(bump)
    with rw.read() as guard:
        assert guard.value == 4


@concurrency.test
def test_readers_never_see_a_half_written_pair() -> None:
    rw = sync.RwLock((0, 0))

    def writer() -> None:
        for i in range(1, 3):
            with rw.write() as guard:
                guard.value = (i, guard.value[1])
                thread.yield_now()
                guard.value = (i, i)

    def reader() -> None:
        for _ in range(2):
            with rw.read() as guard:
                first, second = guard.value
                assert first == second

    with thread.scope() as s:
        s.spawn(writer)
        s.spawn(reader)


# --------------------------------------------------------------------------- real time


@real_threads_only
def test_waiting_writer_blocks_new_readers() -> None:
    """No writer starvation: once a writer waits, new readers queue behind it."""
    rw = sync.RwLock(0)
    first_reader = rw.read()
    writer_in = threading.Event()

    def writer() -> None:
        with rw.write() as guard:
            guard.value = 1
            writer_in.set()

    handle = thread.spawn(writer)
    wait_until(lambda: not probe(rw, "try_read"), "a new reader to be refused")
    assert not probe(rw, "try_upgradable_read")
    assert not writer_in.is_set()
    first_reader.unlock()
    handle.join(10)
    with rw.read() as guard:
        assert guard.value == 1


@real_threads_only
def test_writer_gets_through_a_stream_of_readers() -> None:
    """Readers overlap so the lock is never free of them; the writer still gets in."""
    rw = sync.RwLock(0)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            with rw.read():
                time.sleep(0.002)

    readers = [thread.spawn(reader) for _ in range(3)]
    settle(3)
    start = time.monotonic()
    try:
        guard = rw.try_write_for(5.0)
        waited = time.monotonic() - start
        assert guard is not None, "writer starved by readers for 5s"
        guard.unlock()
    finally:
        stop.set()
        for handle in readers:
            handle.join(10)
    assert waited < 5.0


@real_threads_only
def test_queued_readers_go_after_the_writer() -> None:
    """Readers that queued behind a waiting writer get in once it leaves."""
    rw = sync.RwLock(0)
    first_reader = rw.read()
    order: list[str] = []

    def writer() -> None:
        with rw.write() as guard:
            guard.value = 1
            order.append("writer")

    def late_reader() -> None:
        with rw.read() as guard:
            order.append(f"reader saw {guard.value}")

    w = thread.spawn(writer)
    wait_until(lambda: not probe(rw, "try_read"), "the writer to queue")
    r = thread.spawn(late_reader)
    settle()
    first_reader.unlock()
    w.join(10)
    r.join(10)
    assert order == ["writer", "reader saw 1"]


@real_threads_only
@pytest.mark.parametrize("method", ["try_read_for", "try_write_for"])
def test_timed_acquire_returns_within_tolerance(method: str) -> None:
    rw = sync.RwLock(0)
    with rw.write():
        start = time.monotonic()
        result = thread.spawn(getattr(rw, method), 0.2).join(10)
        elapsed = time.monotonic() - start
    assert result is None
    assert 0.12 <= elapsed < 3.0
    # Timing out left no trace: the lock is free for everyone.
    assert probe(rw, "try_write")



@real_threads_only
def test_upgradable_reader_gets_through_a_stream_of_writers() -> None:
    """Writers overlap so one always waits; an upgradable reader still gets its turn."""
    rw = sync.RwLock(0)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            with rw.write():
                time.sleep(0.002)

    writers = [thread.spawn(writer) for _ in range(2)]
    settle(2)
    upgradable_in = threading.Event()

    def upgradable_reader() -> None:
        with rw.upgradable_read():
            upgradable_in.set()

    handle = thread.spawn(upgradable_reader)
    try:
        got_in = upgradable_in.wait(3.0)
    finally:
        stop.set()
        for h in [*writers, handle]:
            h.join(10)
    assert got_in, "upgradable_read() starved by writers for 3s"
