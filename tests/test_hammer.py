"""Hammer tests on real threads, after readerwriterlock's `test_multi_thread`.

Many readers and writers (blocking and timed) run for a short while and check
their invariants inside every critical section. An occupancy tracker, kept
under its own raw lock, records who is inside: a thread enters it only after
acquiring and leaves it before releasing, so the tracker never sees more than
the lock really admits. `CONCURRENCY_HAMMER_SECONDS` makes a run longer.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sync_helpers import real_threads_only

from concurrency import sync, thread

pytestmark = real_threads_only

DURATION = float(os.environ.get("CONCURRENCY_HAMMER_SECONDS", "1.0"))
TINY = sys.float_info.min  # the timed acquires' timeout, as readerwriterlock uses


class Occupancy:
    """Who is inside the lock under test, checked at every transition."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()

    def _check(self, mode: str) -> None:
        readers, writers, upgradables = (self.inside[k] for k in ("read", "write", "upgradable"))
        if mode == "write":
            assert readers == writers == upgradables == 0, f"writer admitted beside {self.inside}"
        elif mode == "read":
            assert writers == 0, f"reader admitted beside {self.inside}"
        elif mode == "upgradable":
            assert writers == upgradables == 0, f"upgradable admitted beside {self.inside}"

    def enter(self, mode: str, kind: str) -> None:
        with self._lock:
            self._check(mode)
            self.inside[mode] += 1
            self.operations[kind] += 1

    def leave(self, mode: str) -> None:
        with self._lock:
            self.inside[mode] -= 1

    def switch(self, old: str, new: str) -> None:
        with self._lock:
            self.inside[old] -= 1
            self._check(new)
            self.inside[new] += 1


def run_for(duration: float, workers: dict[str, Callable[[], None]], copies: int) -> None:
    """Run `copies` threads of every worker until `duration` passes; re-raise failures."""
    stop = time.monotonic() + duration

    def loop(work: Callable[[], None]) -> None:
        while time.monotonic() < stop:
            work()
            time.sleep(0)  # readerwriterlock sleeps sys.float_info.min between rounds

    with thread.scope() as s:
        for name, work in workers.items():
            for i in range(copies):
                s.spawn(loop, work, name=f"{name}-{i}")


def test_rwlock_hammer() -> None:
    rw = sync.RwLock(0)
    seen = Occupancy()
    writes = Counter[str]()
    count_lock = threading.Lock()

    def write_body(guard: Any, kind: str) -> None:
        before = guard.value
        guard.value = before + 1
        time.sleep(0)
        assert guard.value == before + 1
        with count_lock:
            writes[kind] += 1

    def read_body(guard: Any) -> None:
        first = guard.value
        time.sleep(0)
        assert guard.value == first

    def writer() -> None:
        with rw.write() as guard:
            seen.enter("write", "writer")
            write_body(guard, "writer")
            seen.leave("write")

    def timed_writer() -> None:
        guard = rw.try_write_for(TINY)
        if guard is None:
            return
        with guard:
            seen.enter("write", "timed_writer")
            write_body(guard, "timed_writer")
            seen.leave("write")

    def reader() -> None:
        with rw.read() as guard:
            seen.enter("read", "reader")
            read_body(guard)
            seen.leave("read")

    def timed_reader() -> None:
        guard = rw.try_read_for(TINY)
        if guard is None:
            return
        with guard:
            seen.enter("read", "timed_reader")
            read_body(guard)
            seen.leave("read")

    def upgrader() -> None:
        with rw.upgradable_read() as upgradable:
            seen.enter("upgradable", "upgrader")
            before = upgradable.value
            time.sleep(0)
            writer_guard = upgradable.upgrade()
            seen.switch("upgradable", "write")
            assert writer_guard.value == before, "a writer got in during the upgrade"
            write_body(writer_guard, "upgrader")
            seen.leave("write")
            writer_guard.unlock()

    def downgrader() -> None:
        writer_guard = rw.write()
        seen.enter("write", "downgrader")
        write_body(writer_guard, "downgrader")
        written = writer_guard.value
        seen.switch("write", "read")
        with writer_guard.downgrade() as reader_guard:
            time.sleep(0)
            assert reader_guard.value == written, "a writer got in during the downgrade"
            seen.leave("read")

    workers = {
        "writer": writer,
        "timed_writer": timed_writer,
        "reader": reader,
        "timed_reader": timed_reader,
        "upgrader": upgrader,
        "downgrader": downgrader,
    }
    run_for(DURATION, workers, copies=3)

    assert sum(seen.inside.values()) == 0
    starved = [name for name in workers if name != "timed_writer" and seen.operations[name] == 0]
    assert not starved, f"made no progress in {DURATION}s: {starved} ({seen.operations})"
    with rw.read() as guard:
        assert guard.value == sum(writes.values())
    assert not rw.is_poisoned()


def test_mutex_hammer() -> None:
    m = sync.Mutex(0)
    seen = Occupancy()
    increments = Counter[str]()
    count_lock = threading.Lock()

    def critical(guard: Any, kind: str) -> None:
        seen.enter("write", kind)
        before = guard.value
        time.sleep(0)
        guard.value = before + 1
        seen.leave("write")
        with count_lock:
            increments[kind] += 1

    def blocking() -> None:
        with m.lock() as guard:
            critical(guard, "lock")

    def trying() -> None:
        guard = m.try_lock()
        if guard is not None:
            with guard:
                critical(guard, "try_lock")

    def timed() -> None:
        guard = m.try_lock_for(TINY)
        if guard is not None:
            with guard:
                critical(guard, "try_lock_for")

    run_for(DURATION, {"lock": blocking, "try_lock": trying, "try_lock_for": timed}, copies=3)

    assert increments["lock"] > 0
    with m.lock() as guard:
        assert guard.value == sum(increments.values())


def test_condvar_bounded_queue_hammer() -> None:
    """Two producers, two consumers, a Mutex-guarded queue of at most 4 items."""
    per_producer, capacity = 2000, 4
    state = sync.Mutex({"queue": [], "done_producers": 0})
    not_empty, not_full = sync.Condvar(), sync.Condvar()
    consumed: list[tuple[int, int]] = []
    consumed_lock = threading.Lock()

    def produce(tag: int) -> None:
        for i in range(per_producer):
            with state.lock() as guard:
                not_full.wait_while(guard, lambda s: len(s["queue"]) >= capacity)
                guard.value["queue"].append((tag, i))
            not_empty.notify_one()
        with state.lock() as guard:
            guard.value["done_producers"] += 1
        not_empty.notify_all()

    def consume() -> None:
        while True:
            with state.lock() as guard:
                not_empty.wait_while(
                    guard, lambda s: not s["queue"] and s["done_producers"] < 2
                )
                if not guard.value["queue"]:
                    return
                item = guard.value["queue"].pop(0)
            not_full.notify_one()
            with consumed_lock:
                consumed.append(item)

    with thread.scope() as s:
        for tag in range(2):
            s.spawn(produce, tag)
        for _ in range(2):
            s.spawn(consume)

    assert sorted(consumed) == sorted((tag, i) for tag in range(2) for i in range(per_producer))
