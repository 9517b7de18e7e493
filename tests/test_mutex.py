"""`concurrency.sync.Mutex`: naked guards, try/timed locking, mutual exclusion.

Poisoning has its own module (`test_poison.py`); misuse the checked backend
detects is in `test_checked_misuse.py`.
"""

from __future__ import annotations

import math
import threading
import time

import pytest
from sync_helpers import assert_took, join_all, real_threads_only, settle, timed, wait_until

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic

# --------------------------------------------------------------------------- one thread


@concurrency.test(iterations=1)
def test_guard_reads_and_replaces_the_value() -> None:
    m = sync.Mutex([1])
    with m.lock() as guard:
        assert guard.value == [1]
        guard.value.append(2)
        guard.value = "replaced"
        assert guard.value == "replaced"
    with m.lock() as guard:
        assert guard.value == "replaced"


@concurrency.test(iterations=1)
def test_default_value_is_none() -> None:
    with sync.Mutex().lock() as guard:
        assert guard.value is None


@concurrency.test(iterations=1)
def test_facade_types() -> None:
    m = sync.Mutex(0)
    assert isinstance(m, sync.Mutex)
    with m.lock() as guard:
        assert isinstance(guard, sync.MutexGuard)


@concurrency.test(iterations=1)
def test_is_locked_follows_the_guard() -> None:
    m = sync.Mutex(0)
    assert not m.is_locked()
    with m.lock():
        assert m.is_locked()
    assert not m.is_locked()
    guard = m.lock()
    assert m.is_locked()
    guard.unlock()
    assert not m.is_locked()


@concurrency.test(iterations=1)
def test_try_lock_on_a_free_lock_returns_a_guard() -> None:
    m = sync.Mutex(5)
    guard = m.try_lock()
    assert guard is not None
    assert guard.value == 5
    guard.unlock()
    timed = m.try_lock_for(0.01)
    assert timed is not None
    timed.unlock()


@concurrency.test(iterations=1)
def test_unlock_twice_raises() -> None:
    m = sync.Mutex(0)
    guard = m.lock()
    guard.unlock()
    with pytest.raises(RuntimeError, match="already released"):
        guard.unlock()
    assert not m.is_locked()


@concurrency.test(iterations=1)
def test_exit_after_early_unlock_is_harmless() -> None:
    m = sync.Mutex(0)
    with m.lock() as guard:
        guard.value = 1
        guard.unlock()
    assert not m.is_locked()
    assert not m.is_poisoned()
    with m.lock() as guard:
        assert guard.value == 1


@concurrency.test(iterations=1)
def test_with_releases_on_exception() -> None:
    """lock_tests.test_with: an exception leaves the lock free (and, here, poisoned)."""
    m = sync.Mutex(0)
    with pytest.raises(TypeError), m.lock():
        raise TypeError
    assert not m.is_locked()
    assert m.is_poisoned()


@concurrency.test(iterations=1)
def test_names_label_locks() -> None:
    assert sync.Mutex(name="accounts").name == "accounts"
    first, second = sync.Mutex(), sync.Mutex()
    assert first.name != second.name
    assert "Mutex" in first.name


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan])
@concurrency.test(iterations=1)
def test_try_lock_for_rejects_bad_timeouts(bad: float) -> None:
    with pytest.raises(ValueError, match="try_lock_for"):
        sync.Mutex().try_lock_for(bad)


@pytest.mark.parametrize("bad", [None, "1", True])
@concurrency.test(iterations=1)
def test_try_lock_for_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(TypeError, match="try_lock_for"):
        sync.Mutex().try_lock_for(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- threads


@concurrency.test
def test_try_lock_while_contended_returns_none() -> None:
    """lock_tests.test_try_acquire_contended."""
    m = sync.Mutex(0)
    with m.lock():
        assert thread.spawn(m.try_lock).join() is None
        assert thread.spawn(m.try_lock_for, 0.01).join() is None
    assert thread.spawn(_take_and_release, m).join() is True


def _take_and_release(m: sync.Mutex[int]) -> bool:
    guard = m.try_lock()
    if guard is None:
        return False
    guard.unlock()
    return True


@concurrency.test
def test_contended_lock_waits_for_release() -> None:
    """lock_tests.test_acquire_contended: waiters get in only after the holder leaves."""
    m = sync.Mutex(0)
    entered = atomic.AtomicInt(0)

    def waiter() -> None:
        with m.lock() as guard:
            guard.value += 1
            entered.fetch_add(1)

    guard = m.lock()
    handles = [thread.spawn(waiter) for _ in range(2)]
    assert entered.load() == 0  # nobody can be inside while we hold it
    guard.unlock()
    for handle in handles:
        handle.join()
    assert entered.load() == 2
    with m.lock() as guard:
        assert guard.value == 2


@concurrency.test
def test_increments_are_not_lost() -> None:
    """Read, yield, write inside the lock: a broken lock would lose updates."""
    m = sync.Mutex(0)

    def bump() -> None:
        for _ in range(3):
            with m.lock() as guard:
                seen = guard.value
                thread.yield_now()
                guard.value = seen + 1

    with thread.scope() as s:
        s.spawn(bump)
        s.spawn(bump)
    with m.lock() as guard:
        assert guard.value == 6


@concurrency.test
def test_lock_handed_between_threads_keeps_value() -> None:
    m = sync.Mutex([])

    def append(item: str) -> None:
        with m.lock() as guard:
            guard.value = [*guard.value, item]

    with thread.scope() as s:
        s.spawn(append, "a")
        s.spawn(append, "b")
    with m.lock() as guard:
        assert sorted(guard.value) == ["a", "b"]


@concurrency.test
def test_try_lock_for_gets_the_lock_once_released() -> None:
    m = sync.Mutex("v")
    guard = m.lock()

    def wait_for_it() -> str | None:
        got = m.try_lock_for(30.0)
        if got is None:
            return None
        with got:
            return got.value  # type: ignore[no-any-return]

    handle = thread.spawn(wait_for_it)
    guard.unlock()
    result = handle.join()
    if concurrency.backend() in ("threading", "fast"):
        assert result == "v"
    else:  # the model may let a timed wait time out as a scheduling choice
        assert result in ("v", None)


# --------------------------------------------------------------------------- real time
# Ports of CPython's Lib/test/lock_tests.py (BaseLockTests / LockTests) that need real
# threads and the wall clock.


@real_threads_only
def test_timed_acquire_returns_within_tolerance() -> None:
    """lock_tests.test_timeout: a free lock is immediate, a held one times out on time."""
    m = sync.Mutex(0)
    guard, elapsed = timed(lambda: m.try_lock_for(5))
    assert guard is not None
    assert elapsed < 5
    start = time.monotonic()
    result = thread.spawn(m.try_lock_for, 0.3).join(10)
    assert result is None
    assert_took(time.monotonic() - start, 0.3)
    guard.unlock()


@real_threads_only
def test_state_after_timeout() -> None:
    """lock_tests.test_state_after_timeout: a timed-out attempt leaves no trace."""
    m = sync.Mutex(0)
    with m.lock():
        assert thread.spawn(m.try_lock_for, 0.01).join(10) is None
    assert not m.is_locked()
    guard = m.try_lock()
    assert guard is not None
    guard.unlock()


@real_threads_only
def test_contended_acquire_with_parked_waiters() -> None:
    """lock_tests.test_acquire_contended: 5 threads really block, then all get through."""
    m = sync.Mutex(0)
    done = atomic.AtomicInt(0)

    def waiter() -> None:
        with m.lock() as guard:
            guard.value += 1
        done.fetch_add(1)

    guard = m.lock()
    handles = [thread.spawn(waiter) for _ in range(5)]
    settle(5)
    assert done.load() == 0
    guard.unlock()
    join_all(handles)
    assert done.load() == 5
    with m.lock() as guard:
        assert guard.value == 5


@real_threads_only
def test_no_thread_leak() -> None:
    """lock_tests.test_thread_leak: 15 threads come and go, none is left behind."""
    m = sync.Mutex(0)
    baseline = threading.active_count()

    def touch() -> None:
        with m.lock() as guard:
            guard.value += 1

    join_all([thread.spawn(touch) for _ in range(15)])
    wait_until(lambda: threading.active_count() == baseline, "threads to exit")
    with m.lock() as guard:
        assert guard.value == 15


@real_threads_only
def test_waiter_gets_the_lock_soon_after_release() -> None:
    m = sync.Mutex("v")
    holding = threading.Event()

    def hold_briefly() -> None:
        with m.lock():
            holding.set()
            time.sleep(0.05)

    holder = thread.spawn(hold_briefly)
    assert holding.wait(10)
    got, elapsed = timed(lambda: m.try_lock_for(10))
    holder.join(10)
    assert got is not None
    assert elapsed < 5
    got.unlock()
