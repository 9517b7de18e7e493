"""`concurrency.sync.Condvar`: waiting on a Mutex guard, notify counts, timeouts.

`wait` may wake spuriously, so the interleaving-independent tests use
`wait_while` / `wait_timeout_while`; the notify-count checks, which rely on the
real-thread backends never waking spuriously, run on real threads only.
"""

from __future__ import annotations

import math
import time

import pytest
from sync_helpers import JOIN_TIMEOUT, assert_took, real_threads_only, wait_until

import concurrency
from concurrency import sync, thread


@concurrency.test
def test_wait_while_returns_once_predicate_is_false() -> None:
    m = sync.Mutex(0)
    cv = sync.Condvar()

    def producer() -> None:
        with m.lock() as guard:
            guard.value = 42
        cv.notify_one()

    handle = thread.spawn(producer)
    with m.lock() as guard:
        cv.wait_while(guard, lambda v: v == 0)
        assert guard.value == 42
    handle.join(JOIN_TIMEOUT)


@concurrency.test
def test_wait_reacquires_the_lock() -> None:
    m = sync.Mutex(False)
    cv = sync.Condvar()

    def setter() -> None:
        with m.lock() as guard:
            guard.value = True
            cv.notify_all()

    handle = thread.spawn(setter)
    with m.lock() as guard:
        while not guard.value:
            cv.wait(guard)
        assert m.is_locked()
        guard.value = "still mine"  # we hold the lock again after waking
    handle.join(JOIN_TIMEOUT)
    with m.lock() as guard:
        assert guard.value == "still mine"


@concurrency.test
def test_notify_all_wakes_every_waiter() -> None:
    m = sync.Mutex(False)
    cv = sync.Condvar()

    def waiter() -> str:
        with m.lock() as guard:
            cv.wait_while(guard, lambda ready: not ready)
            return "woke"

    handles = [thread.spawn(waiter) for _ in range(2)]
    with m.lock() as guard:
        guard.value = True
    cv.notify_all()
    assert [h.join(JOIN_TIMEOUT) for h in handles] == ["woke", "woke"]


@concurrency.test
def test_notify_one_per_item_wakes_enough_consumers() -> None:
    """Each notify_one pairs with one item: two items wake both consumers eventually."""
    m = sync.Mutex(0)
    cv = sync.Condvar()

    def consumer() -> None:
        with m.lock() as guard:
            cv.wait_while(guard, lambda items: items == 0)
            guard.value -= 1

    handles = [thread.spawn(consumer) for _ in range(2)]
    for _ in range(2):
        with m.lock() as guard:
            guard.value += 1
            cv.notify_one()
    for handle in handles:
        handle.join(JOIN_TIMEOUT)
    with m.lock() as guard:
        assert guard.value == 0


@concurrency.test
def test_wait_timeout_while_times_out_when_never_satisfied() -> None:
    m = sync.Mutex(0)
    cv = sync.Condvar()
    with m.lock() as guard:
        assert cv.wait_timeout_while(guard, 0.01, lambda v: True) is True
        assert m.is_locked()
        guard.value = 1  # still held after timing out


@concurrency.test
def test_wait_timeout_while_reports_success() -> None:
    m = sync.Mutex(0)
    cv = sync.Condvar()
    with m.lock() as guard:
        assert cv.wait_timeout_while(guard, 0.01, lambda v: False) is False
        guard.value = 1

    def producer() -> None:
        with m.lock() as guard:
            guard.value = 2
            cv.notify_one()

    handle = thread.spawn(producer)
    with m.lock() as guard:
        timed_out = cv.wait_timeout_while(guard, 30.0, lambda v: v != 2)
        # On the model a timed wait may time out as a scheduling choice; then the
        # predicate is what tells us so.
        assert timed_out == (guard.value != 2)
    handle.join(JOIN_TIMEOUT)


@concurrency.test
def test_wait_timeout_returns_with_lock_held() -> None:
    m = sync.Mutex(0)
    cv = sync.Condvar()
    with m.lock() as guard:
        result = cv.wait_timeout(guard, 0.01)
        assert isinstance(result, bool)
        assert m.is_locked()
        guard.value = 1


@concurrency.test(iterations=1)
def test_notify_without_waiters_is_a_no_op() -> None:
    cv = sync.Condvar()
    cv.notify_one()
    cv.notify_all()


@concurrency.test(iterations=1)
def test_wait_with_a_released_guard_raises() -> None:
    m = sync.Mutex(0)
    cv = sync.Condvar()
    guard = m.lock()
    guard.unlock()
    with pytest.raises(RuntimeError, match="released"):
        cv.wait_timeout(guard, 0.01)


@pytest.mark.parametrize("bad", [-1, math.nan])
@concurrency.test(iterations=1)
def test_timeouts_are_validated(bad: float) -> None:
    m = sync.Mutex(0)
    cv = sync.Condvar()
    with m.lock() as guard:
        with pytest.raises(ValueError, match="wait_timeout"):
            cv.wait_timeout(guard, bad)
        with pytest.raises(ValueError, match="wait_timeout_while"):
            cv.wait_timeout_while(guard, bad, lambda v: True)
        with pytest.raises(TypeError, match="wait_timeout"):
            cv.wait_timeout(guard, None)  # type: ignore[arg-type]


@concurrency.test(iterations=1)
def test_a_condvar_reused_with_its_mutex_keeps_working() -> None:
    m = sync.Mutex(0)
    cv = sync.Condvar()
    for _ in range(2):
        with m.lock() as guard:
            assert cv.wait_timeout_while(guard, 0.0, lambda v: True) is True


# --------------------------------------------------------------------------- real time


class Waiters:
    """N threads that each wait twice on one Condvar (CPython's _check_notify)."""

    def __init__(self, count: int) -> None:
        self.mutex = sync.Mutex({"ready": 0, "woken": []})
        self.cv = sync.Condvar()
        self.phase = 0
        self.handles = [thread.spawn(self._run) for _ in range(count)]

    def _run(self) -> None:
        for _ in range(2):
            with self.mutex.lock() as guard:
                guard.value["ready"] += 1
                self.cv.wait(guard)  # registered before the lock is released
                guard.value["woken"].append(self.phase)

    def ready(self) -> int:
        with self.mutex.lock() as guard:
            return int(guard.value["ready"])

    def woken(self) -> list[int]:
        with self.mutex.lock() as guard:
            return list(guard.value["woken"])

    def notify(self, phase: int, count: int | None) -> None:
        """Notify `count` waiters (all if None) while holding the lock."""
        with self.mutex.lock():
            self.phase = phase
            if count is None:
                self.cv.notify_all()
            else:
                for _ in range(count):
                    self.cv.notify_one()


@real_threads_only
def test_notify_wakes_exactly_as_many_as_asked() -> None:
    """lock_tests.ConditionTests.test_notify: 3 of 5, then 5 more, then all."""
    waiters = Waiters(5)
    wait_until(lambda: waiters.ready() == 5, "all 5 threads waiting")

    waiters.notify(1, 3)
    wait_until(lambda: len(waiters.woken()) == 3, "3 woken threads")
    time.sleep(0.1)  # would a fourth wake up? (real backends never wake spuriously)
    assert waiters.woken() == [1, 1, 1]

    wait_until(lambda: waiters.ready() == 8, "the 3 woken threads to wait again")
    waiters.notify(2, 5)
    wait_until(lambda: len(waiters.woken()) == 8, "8 wake-ups")
    time.sleep(0.1)
    assert waiters.woken() == [1, 1, 1, 2, 2, 2, 2, 2]

    wait_until(lambda: waiters.ready() == 10, "every thread in its second wait")
    waiters.notify(3, None)
    for handle in waiters.handles:
        handle.join(10)
    assert waiters.woken() == [1, 1, 1] + [2] * 5 + [3, 3]


@real_threads_only
def test_wait_timeout_returns_within_tolerance() -> None:
    """lock_tests.ConditionTests.test_timeout, with 3 threads at once."""
    m = sync.Mutex(0)
    cv = sync.Condvar()

    def wait() -> tuple[bool, float]:
        with m.lock() as guard:
            start = time.monotonic()
            timed_out = cv.wait_timeout(guard, 0.2)
            return timed_out, time.monotonic() - start

    for timed_out, elapsed in [h.join(10) for h in [thread.spawn(wait) for _ in range(3)]]:
        assert timed_out is True
        assert_took(elapsed, 0.2)


@real_threads_only
def test_wait_while_sees_every_step() -> None:
    """lock_tests.test_waitfor: the predicate is re-checked after each notify."""
    m = sync.Mutex(0)
    cv = sync.Condvar()

    def waiter() -> int:
        with m.lock() as guard:
            cv.wait_while(guard, lambda state: state != 4)
            return int(guard.value)

    handle = thread.spawn(waiter)
    for _ in range(4):
        time.sleep(0.01)
        with m.lock() as guard:
            guard.value += 1
            cv.notify_one()
    assert handle.join(10) == 4


@real_threads_only
def test_wait_timeout_while_times_out_within_tolerance() -> None:
    """lock_tests.test_waitfor_timeout: 3 steps of the 4 needed, then the timeout."""
    m = sync.Mutex(0)
    cv = sync.Condvar()

    def waiter() -> tuple[bool, float]:
        with m.lock() as guard:
            start = time.monotonic()
            timed_out = cv.wait_timeout_while(guard, 0.3, lambda state: state != 4)
            return timed_out, time.monotonic() - start

    handle = thread.spawn(waiter)
    for _ in range(3):
        time.sleep(0.01)
        with m.lock() as guard:
            guard.value += 1
            cv.notify_one()
    timed_out, elapsed = handle.join(10)
    assert timed_out is True
    assert_took(elapsed, 0.3)
