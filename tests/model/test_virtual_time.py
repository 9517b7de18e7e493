"""Virtual time under the model checker.

Inside `check` nothing really sleeps: `thread.sleep` and every timed wait set
a deadline on a virtual clock. A waiter whose deadline is the earliest one may
time out at any scheduling point, which is one more choice the search
explores, so a timed wait that could succeed is seen both succeeding and
timing out. Sleepers wake in the order of their deadlines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic

TIMED_OUT = "timed out"
SUCCEEDED = "succeeded"


def outcomes_of(make_body: Callable[[set[Any]], Callable[[], None]]) -> set[Any]:
    """Every outcome the body records, over all its schedules (DFS, exhaustive)."""
    seen: set[Any] = set()
    report = concurrency.check(make_body(seen), "dfs", iterations=5000)
    assert report.exhausted
    return seen


# --------------------------------------------------------------------------- sleeping


def test_a_thousand_second_sleep_returns_at_once() -> None:
    def body() -> None:
        thread.sleep(1000)
        with thread.scope() as s:
            s.spawn(thread.sleep, 1000)
            s.spawn(thread.sleep, 2000.5)
        thread.sleep(0)

    started = time.perf_counter()
    report = concurrency.check(body, "dfs")
    assert time.perf_counter() - started < 1.0
    assert report.exhausted


def test_sleepers_wake_in_deadline_order() -> None:
    def make(seen: set[Any]) -> Callable[[], None]:
        def body() -> None:
            woke: list[str] = []

            def nap(name: str, seconds: float) -> None:
                thread.sleep(seconds)
                woke.append(name)

            with thread.scope() as s:
                s.spawn(nap, "three", 3.0)
                s.spawn(nap, "one", 1.0)
                s.spawn(nap, "two", 2.0)
            seen.add(tuple(woke))

        return body

    assert outcomes_of(make) == {("one", "two", "three")}


def test_deadlines_count_from_when_the_sleep_started() -> None:
    """B sleeps 1 s and then 0.5 s more (deadline 1.5), so it wakes twice before A's 2 s."""

    def make(seen: set[Any]) -> Callable[[], None]:
        def body() -> None:
            woke: list[str] = []

            def slow() -> None:
                thread.sleep(2.0)
                woke.append("A@2")

            def twice() -> None:
                thread.sleep(1.0)
                woke.append("B@1")
                thread.sleep(0.5)
                woke.append("B@1.5")

            with thread.scope() as s:
                s.spawn(slow)
                s.spawn(twice)
            seen.add(tuple(woke))

        return body

    assert outcomes_of(make) == {("B@1", "B@1.5", "A@2")}


def test_sleep_validates_its_argument() -> None:
    def body() -> None:
        for bad in (-1, float("nan")):
            with pytest.raises(ValueError, match=r"thread\.sleep"):
                thread.sleep(bad)
        with pytest.raises(TypeError, match=r"thread\.sleep"):
            thread.sleep(None)  # type: ignore[arg-type]

    concurrency.check(body, "dfs")


# --------------------------------------------------------------------------- timed waits


def _mutex_try_lock_for(seen: set[Any]) -> Callable[[], None]:
    def body() -> None:
        m = sync.Mutex()
        guard = m.lock()

        def contender() -> None:
            got = m.try_lock_for(1.0)
            seen.add(TIMED_OUT if got is None else SUCCEEDED)
            if got is not None:
                got.unlock()

        handle = thread.spawn(contender)
        guard.unlock()
        handle.join()

    return body


def _rwlock_try_write_for(seen: set[Any]) -> Callable[[], None]:
    def body() -> None:
        rw = sync.RwLock()
        reader = rw.read()

        def writer() -> None:
            got = rw.try_write_for(1.0)
            seen.add(TIMED_OUT if got is None else SUCCEEDED)
            if got is not None:
                got.unlock()

        handle = thread.spawn(writer)
        reader.unlock()
        handle.join()

    return body


def _rwlock_try_read_for(seen: set[Any]) -> Callable[[], None]:
    def body() -> None:
        rw = sync.RwLock()
        held = rw.write()

        def reader() -> None:
            got = rw.try_read_for(1.0)
            seen.add(TIMED_OUT if got is None else SUCCEEDED)
            if got is not None:
                got.unlock()

        handle = thread.spawn(reader)
        held.unlock()
        handle.join()

    return body


def _semaphore_try_acquire_for(seen: set[Any]) -> Callable[[], None]:
    def body() -> None:
        permits = sync.Semaphore(1)
        mine = permits.acquire()
        handle = thread.spawn(permits.try_acquire_for, 1.0)
        mine.unlock()
        got = handle.join()
        seen.add(TIMED_OUT if got is None else SUCCEEDED)

    return body


def _condvar_wait_timeout(seen: set[Any]) -> Callable[[], None]:
    def body() -> None:
        state = sync.Mutex(False)
        cv = sync.Condvar()

        def notifier() -> None:
            with state.lock() as guard:
                guard.value = True
                cv.notify_one()

        with state.lock() as guard:
            handle = thread.spawn(notifier)
            timed_out = cv.wait_timeout(guard, 1.0)
            seen.add(TIMED_OUT if timed_out else SUCCEEDED)
            if not timed_out:
                assert guard.value, "woken without a notification"
        handle.join()

    return body


def _recv_timeout(seen: set[Any]) -> Callable[[], None]:
    def body() -> None:
        tx, rx = sync.channel()
        handle = thread.spawn(tx.send, "message")
        try:
            assert rx.recv_timeout(1.0) == "message"
            seen.add(SUCCEEDED)
        except TimeoutError:
            seen.add(TIMED_OUT)
        handle.join()

    return body


def _join_timeout(seen: set[Any]) -> Callable[[], None]:
    def body() -> None:
        handle = thread.spawn(atomic.AtomicInt().fetch_add, 1)
        try:
            handle.join(timeout=1.0)
            seen.add(SUCCEEDED)
        except TimeoutError:
            seen.add(TIMED_OUT)
            handle.join()

    return body


def _barrier_wait_timeout(seen: set[Any]) -> Callable[[], None]:
    def body() -> None:
        barrier = sync.Barrier(2)
        handle = thread.spawn(barrier.wait, 1.0)
        try:
            barrier.wait()
            seen.add(SUCCEEDED)
        except sync.BrokenBarrierError:
            seen.add(TIMED_OUT)
        try:
            handle.join()
        except sync.BrokenBarrierError:
            pass

    return body


TIMED_WAITS = {
    "Mutex.try_lock_for": _mutex_try_lock_for,
    "RwLock.try_write_for": _rwlock_try_write_for,
    "RwLock.try_read_for": _rwlock_try_read_for,
    "Semaphore.try_acquire_for": _semaphore_try_acquire_for,
    "Condvar.wait_timeout": _condvar_wait_timeout,
    "Receiver.recv_timeout": _recv_timeout,
    "JoinHandle.join": _join_timeout,
    "Barrier.wait": _barrier_wait_timeout,
}


@pytest.mark.parametrize("operation", sorted(TIMED_WAITS))
def test_a_timed_wait_that_could_succeed_may_also_time_out(operation: str) -> None:
    assert outcomes_of(TIMED_WAITS[operation]) == {TIMED_OUT, SUCCEEDED}


def test_a_timed_wait_nothing_can_satisfy_times_out_instead_of_deadlocking() -> None:
    def body() -> None:
        _tx, rx = sync.channel()  # the sender stays open
        with pytest.raises(TimeoutError):
            rx.recv_timeout(30.0)
        m = sync.Mutex()
        guard = m.lock()
        assert thread.spawn(m.try_lock_for, 5.0).join() is None
        guard.unlock()

    report = concurrency.check(body, "dfs")
    assert report.exhausted


def test_an_untimed_wait_nothing_can_satisfy_is_a_deadlock() -> None:
    def body() -> None:
        _tx, rx = sync.channel()  # the sender stays open
        rx.recv()

    with pytest.raises(concurrency.ScheduleFailure) as caught:
        concurrency.check(body, "dfs")
    assert caught.value.kind == "deadlock"


def test_a_message_sent_after_the_deadline_never_arrives_in_time() -> None:
    """The sender sleeps 2 s: a 1 s recv_timeout always expires first; 0.5 s may not."""

    def make(delay: float) -> Callable[[set[Any]], Callable[[], None]]:
        def make_body(seen: set[Any]) -> Callable[[], None]:
            def body() -> None:
                tx, rx = sync.channel()

                def late_sender() -> None:
                    thread.sleep(delay)
                    tx.send("late")

                handle = thread.spawn(late_sender)
                try:
                    rx.recv_timeout(1.0)
                    seen.add(SUCCEEDED)
                except TimeoutError:
                    seen.add(TIMED_OUT)
                handle.join()

            return body

        return make_body

    assert outcomes_of(make(2.0)) == {TIMED_OUT}
    assert outcomes_of(make(0.5)) == {TIMED_OUT, SUCCEEDED}

