"""`OnceLock`, `Barrier` and `Semaphore`."""

from __future__ import annotations

import threading
import time

import pytest
from sync_helpers import JOIN_TIMEOUT, assert_took, real_threads_only, settle, wait_until

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic

# --------------------------------------------------------------------------- OnceLock


@concurrency.test(iterations=1)
def test_once_lock_set_and_get() -> None:
    cell = sync.OnceLock()
    assert isinstance(cell, sync.OnceLock)
    assert cell.get() is None
    assert cell.set("first") is True
    assert cell.set("second") is False
    assert cell.get() == "first"
    assert cell.get_or_init(lambda: "never") == "first"


@concurrency.test(iterations=1)
def test_failed_initializer_leaves_the_cell_empty() -> None:
    cell = sync.OnceLock()

    def fail() -> str:
        raise KeyError("no config")

    with pytest.raises(KeyError, match="no config"):
        cell.get_or_init(fail)
    assert cell.get() is None
    assert cell.get_or_init(lambda: "retry") == "retry"
    assert cell.get() == "retry"


@concurrency.test
def test_exactly_one_initializer_runs() -> None:
    cell = sync.OnceLock()
    runs = atomic.AtomicInt(0)

    def init() -> object:
        runs.fetch_add(1)
        thread.yield_now()
        return object()

    handles = [thread.spawn(cell.get_or_init, init) for _ in range(2)]
    first, second = [h.join(JOIN_TIMEOUT) for h in handles]
    assert runs.load() == 1
    assert first is second is cell.get()


@concurrency.test
def test_a_waiter_takes_over_after_a_failed_initializer() -> None:
    cell = sync.OnceLock()

    def failing() -> int:
        thread.yield_now()
        raise ValueError("flaky")

    def attempt(fn: object) -> object:
        try:
            return cell.get_or_init(fn)  # type: ignore[arg-type]
        except ValueError:
            return "raised"

    a = thread.spawn(attempt, failing)
    b = thread.spawn(attempt, lambda: 2)
    assert a.join(JOIN_TIMEOUT) in ("raised", 2)  # 2 if b initialized first
    assert b.join(JOIN_TIMEOUT) == 2
    assert cell.get() == 2


@concurrency.test
def test_set_races_with_get_or_init() -> None:
    cell = sync.OnceLock()
    setter = thread.spawn(cell.set, "set")
    initialized = cell.get_or_init(lambda: "init")
    stored = setter.join(JOIN_TIMEOUT)
    assert cell.get() == initialized
    assert (initialized == "set") == stored


# --------------------------------------------------------------------------- Barrier


@concurrency.test(iterations=1)
def test_barrier_of_one_always_leads() -> None:
    """lock_tests.test_single_thread."""
    barrier = sync.Barrier(1)
    assert barrier.parties == 1
    assert barrier.wait().is_leader
    assert barrier.wait().is_leader
    assert isinstance(barrier.wait(), sync.BarrierWaitResult)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
@concurrency.test(iterations=1)
def test_barrier_rejects_bad_parties(bad: object) -> None:
    with pytest.raises(ValueError, match="parties"):
        sync.Barrier(bad)  # type: ignore[arg-type]


@concurrency.test
def test_exactly_one_leader_per_round() -> None:
    barrier = sync.Barrier(2)

    def two_rounds() -> list[bool]:
        return [barrier.wait().is_leader for _ in range(2)]

    other = thread.spawn(two_rounds)
    mine = two_rounds()
    theirs = other.join(JOIN_TIMEOUT)
    for round_number in range(2):
        assert mine[round_number] != theirs[round_number]
    assert barrier.n_waiting == 0
    assert not barrier.broken


@concurrency.test
def test_nobody_passes_until_everyone_arrived() -> None:
    """lock_tests.test_barrier: the rounds proceed in lockstep."""
    barrier = sync.Barrier(3)
    arrived = atomic.AtomicInt(0)

    def party() -> None:
        arrived.fetch_add(1)
        barrier.wait()
        assert arrived.load() == 3

    with thread.scope() as s:
        s.spawn(party)
        s.spawn(party)
        party()


@concurrency.test
def test_abort_breaks_the_barrier_for_everyone() -> None:
    barrier = sync.Barrier(2)

    def wait() -> str:
        try:
            barrier.wait()
        except sync.BrokenBarrierError:
            return "broken"
        return "passed"

    handle = thread.spawn(wait)
    barrier.abort()
    assert handle.join(JOIN_TIMEOUT) == "broken"
    assert barrier.broken
    with pytest.raises(sync.BrokenBarrierError):
        barrier.wait()


@concurrency.test
def test_reset_after_abort_makes_it_usable_again() -> None:
    barrier = sync.Barrier(2)
    barrier.abort()
    barrier.reset()
    assert not barrier.broken
    other = thread.spawn(barrier.wait)
    results = [barrier.wait().is_leader, other.join(JOIN_TIMEOUT).is_leader]
    assert sorted(results) == [False, True]


@concurrency.test
def test_a_timed_out_wait_breaks_the_barrier() -> None:
    barrier = sync.Barrier(2)
    with pytest.raises(sync.BrokenBarrierError):
        barrier.wait(timeout=0.01)
    assert barrier.broken
    assert barrier.n_waiting == 0
    with pytest.raises(sync.BrokenBarrierError):
        barrier.wait()


@concurrency.test(iterations=1)
def test_barrier_timeout_is_validated() -> None:
    with pytest.raises(ValueError, match=r"Barrier\.wait"):
        sync.Barrier(2).wait(timeout=-1)


@real_threads_only
def test_barrier_lockstep_ten_rounds_five_threads() -> None:
    """lock_tests.test_barrier_10 and test_wait_return."""
    parties, rounds = 5, 10
    barrier = sync.Barrier(parties)
    before: list[int] = []
    after: list[int] = []
    leaders = atomic.AtomicInt(0)

    def party() -> None:
        for i in range(rounds):
            before.append(i)
            assert len(after) == i * parties
            if barrier.wait(timeout=10).is_leader:
                leaders.fetch_add(1)
            after.append(i)
            assert len(before) == (i + 1) * parties
            barrier.wait(timeout=10)

    with thread.scope() as s:
        for _ in range(parties):
            s.spawn(party)
    assert leaders.load() == rounds
    assert barrier.n_waiting == 0
    assert not barrier.broken


@real_threads_only
def test_barrier_abort_from_one_of_five() -> None:
    """lock_tests.test_abort: one party aborts, the other four see it broken."""
    parties = 5
    barrier = sync.Barrier(parties)
    outcomes: list[str] = []

    def party() -> None:
        try:
            if barrier.wait(timeout=10).is_leader:
                raise RuntimeError("leader gives up")
            barrier.wait(timeout=10)
            outcomes.append("passed")
        except sync.BrokenBarrierError:
            outcomes.append("broken")
        except RuntimeError:
            barrier.abort()

    with thread.scope() as s:
        for _ in range(parties):
            s.spawn(party)
    assert outcomes == ["broken"] * (parties - 1)
    assert barrier.broken
    assert barrier.n_waiting == 0


@real_threads_only
def test_barrier_reset_frees_waiters() -> None:
    """lock_tests.test_reset: waiters see BrokenBarrierError, then all pass again."""
    parties = 4
    barrier = sync.Barrier(parties)
    outcomes: list[str] = []

    def party() -> None:
        if barrier.wait(timeout=10).is_leader:
            wait_until(lambda: barrier.n_waiting == parties - 1, "the others to wait again")
            barrier.reset()
        else:
            try:
                barrier.wait(timeout=10)
                outcomes.append("passed")
            except sync.BrokenBarrierError:
                outcomes.append("broken")
        barrier.wait(timeout=10)

    with thread.scope() as s:
        for _ in range(parties):
            s.spawn(party)
    assert outcomes == ["broken"] * (parties - 1)
    assert not barrier.broken


@real_threads_only
def test_barrier_abort_then_reset_by_the_group() -> None:
    """lock_tests.test_abort_and_reset: broken by one party, reset, then passed by all."""
    parties = 4
    barrier = sync.Barrier(parties)
    meeting = sync.Barrier(parties)
    outcomes: list[str] = []
    passed_again = atomic.AtomicInt(0)

    def party() -> None:
        try:
            if barrier.wait(timeout=10).is_leader:
                raise RuntimeError("leader gives up")
            barrier.wait(timeout=10)
            outcomes.append("passed")
        except sync.BrokenBarrierError:
            outcomes.append("broken")
        except RuntimeError:
            barrier.abort()
        # Everyone has left `barrier` before the reset, and nobody re-enters before it.
        if meeting.wait(timeout=10).is_leader:
            barrier.reset()
        meeting.wait(timeout=10)
        barrier.wait(timeout=10)
        passed_again.fetch_add(1)

    with thread.scope() as s:
        for _ in range(parties):
            s.spawn(party)
    assert outcomes == ["broken"] * (parties - 1)
    assert passed_again.load() == parties
    assert not barrier.broken


@real_threads_only
def test_barrier_timeout_with_a_late_party() -> None:
    """lock_tests.test_timeout: one party is late, so the others' timed wait breaks."""
    parties = 3
    barrier = sync.Barrier(parties)
    results: list[str] = []

    def party() -> None:
        if barrier.wait(timeout=10).is_leader:
            time.sleep(0.5)
        try:
            barrier.wait(timeout=0.2)
            results.append("passed")
        except sync.BrokenBarrierError:
            results.append("broken")

    with thread.scope() as s:
        for _ in range(parties):
            s.spawn(party)
    assert results == ["broken"] * parties
    assert barrier.broken


@real_threads_only
def test_barrier_n_waiting_counts_parked_threads() -> None:
    barrier = sync.Barrier(3)
    handles = [thread.spawn(barrier.wait, 10) for _ in range(2)]
    wait_until(lambda: barrier.n_waiting == 2, "two waiters")
    assert barrier.wait(10).is_leader
    for handle in handles:
        assert not handle.join(10).is_leader
    assert barrier.n_waiting == 0


# --------------------------------------------------------------------------- Semaphore


@concurrency.test(iterations=1)
def test_semaphore_counts_permits() -> None:
    """lock_tests.test_try_acquire."""
    sem = sync.Semaphore(2)
    assert isinstance(sem, sync.Semaphore)
    first, second = sem.try_acquire(), sem.try_acquire()
    assert isinstance(first, sync.SemaphoreGuard)
    assert second is not None
    assert sem.available() == 0
    assert sem.try_acquire() is None
    first.unlock()
    assert sem.available() == 1
    third = sem.try_acquire()
    assert third is not None
    second.unlock()
    third.unlock()
    assert sem.available() == 2


@concurrency.test(iterations=1)
def test_semaphore_guard_releases_once() -> None:
    sem = sync.Semaphore(1)
    guard = sem.acquire()
    guard.unlock()
    with pytest.raises(RuntimeError, match="already released"):
        guard.unlock()
    assert sem.available() == 1


@concurrency.test(iterations=1)
def test_semaphore_with_releases_on_exception() -> None:
    """lock_tests.test_with: a semaphore is not a lock, so it does not poison."""
    sem = sync.Semaphore(2)
    with pytest.raises(TypeError), sem.acquire():
        assert sem.available() == 1
        with sem.acquire():
            assert sem.try_acquire() is None
            raise TypeError
    assert sem.available() == 2
    with sem.acquire():
        pass


@pytest.mark.parametrize("bad", [-1, 1.5, True])
@concurrency.test(iterations=1)
def test_semaphore_rejects_bad_permits(bad: object) -> None:
    with pytest.raises(ValueError, match="permits"):
        sync.Semaphore(bad)  # type: ignore[arg-type]


@concurrency.test(iterations=1)
def test_semaphore_zero_and_timeouts() -> None:
    sem = sync.Semaphore(0)
    assert sem.try_acquire() is None
    assert sem.try_acquire_for(0.01) is None
    with pytest.raises(ValueError, match="try_acquire_for"):
        sem.try_acquire_for(-1)


@concurrency.test
def test_acquire_waits_for_a_release() -> None:
    """lock_tests.test_default_value: a blocked acquire proceeds after a release."""
    sem = sync.Semaphore(1)
    held = sem.acquire()
    entered = atomic.AtomicBool(False)

    def take() -> None:
        with sem.acquire():
            entered.store(True)

    handle = thread.spawn(take)
    assert not entered.load()
    held.unlock()
    handle.join(JOIN_TIMEOUT)
    assert entered.load()
    assert sem.available() == 1


@concurrency.test
def test_semaphore_bounds_concurrency() -> None:
    sem = sync.Semaphore(2)
    inside = atomic.AtomicInt(0)
    peak = atomic.AtomicInt(0)

    def work() -> None:
        with sem.acquire():
            now = inside.fetch_add(1) + 1
            while True:
                best = peak.load()
                if now <= best or peak.compare_exchange(best, now)[0]:
                    break
            thread.yield_now()
            inside.fetch_sub(1)

    with thread.scope() as s:
        for _ in range(3):
            s.spawn(work)
    assert 1 <= peak.load() <= 2
    assert sem.available() == 2


@real_threads_only
def test_semaphore_acquire_contended_in_phases() -> None:
    """lock_tests.test_acquire_contended: 10 threads take 2 permits each, in phases."""
    sem_value = 7
    sem = sync.Semaphore(sem_value)
    first = sem.acquire()
    phase = [0]
    taken: list[int] = []
    guards: list[sync.SemaphoreGuard] = []
    lock = threading.Lock()

    def take_two() -> None:
        for _ in range(2):
            guard = sem.acquire()
            with lock:
                guards.append(guard)
                taken.append(phase[0])

    handles = [thread.spawn(take_two) for _ in range(10)]
    wait_until(lambda: len(taken) == sem_value - 1, "the free permits to be taken")
    settle()
    assert taken == [0] * (sem_value - 1)

    phase[0] = 1
    for guard in [first, *guards[: sem_value - 1]]:
        guard.unlock()
    wait_until(lambda: len(taken) == 2 * sem_value - 1, "phase 1")
    settle()
    assert sorted(taken) == [0] * (sem_value - 1) + [1] * sem_value
    assert sem.try_acquire() is None

    phase[0] = 2
    for guard in guards[sem_value - 1 :]:
        guard.unlock()
    wait_until(lambda: len(taken) == 20, "the last phase")
    for handle in handles:
        handle.join(10)
    assert sorted(taken) == [0] * 6 + [1] * 7 + [2] * 7
    for guard in guards[2 * sem_value - 1 :]:
        guard.unlock()
    assert sem.available() == sem_value


@real_threads_only
def test_semaphore_try_acquire_contended() -> None:
    """lock_tests.test_try_acquire_contended: 3 free permits, 10 tries, 3 successes."""
    sem = sync.Semaphore(4)
    held = sem.acquire()
    results: list[bool] = []
    guards = []

    def try_twice() -> None:
        for _ in range(2):
            guard = sem.try_acquire()
            results.append(guard is not None)
            if guard is not None:
                guards.append(guard)

    with thread.scope() as s:
        for _ in range(5):
            s.spawn(try_twice)
    assert sorted(results) == [False] * 7 + [True] * 3
    for guard in [held, *guards]:
        guard.unlock()
    assert sem.available() == 4


@real_threads_only
def test_semaphore_timed_acquire_within_tolerance() -> None:
    """lock_tests.test_acquire_timeout."""
    sem = sync.Semaphore(2)
    a, b = sem.try_acquire_for(0.005), sem.try_acquire_for(0.005)
    assert a is not None and b is not None
    start = time.monotonic()
    assert sem.try_acquire_for(0.3) is None
    assert_took(time.monotonic() - start, 0.3)
    a.unlock()
    c = sem.try_acquire_for(0.005)
    assert c is not None
    for guard in (b, c):
        guard.unlock()
