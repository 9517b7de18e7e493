"""DFS with sleep sets must reach exactly the outcomes of DFS without them.

Sleep sets prune orderings that only swap independent operations; if the
independence relation were wrong, some outcome would go missing. Each program
records what it observed, and the set of observations is compared with a DFS
that explores every schedule (a preemption bound no test reaches turns the
reduction off).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.sync.atomic import AtomicInt

UNREDUCED = 10**6  # a preemption bound this high never binds, and disables sleep sets


def two_locks_and_a_counter(seen: list[object]) -> None:
    a, b = sync.Mutex([], name="a"), sync.Mutex([], name="b")
    hits = AtomicInt(0)

    def worker(tag: str, first: sync.Mutex[list[str]], second: sync.Mutex[list[str]]) -> None:
        with first.lock() as guard:
            guard.value.append(tag)
        hits.fetch_add(1)
        with second.lock() as guard:
            guard.value.append(tag)

    with thread.scope() as scope:
        scope.spawn(worker, "x", a, b)
        scope.spawn(worker, "y", b, a)
    with a.lock() as ga, b.lock() as gb:
        seen.append((tuple(ga.value), tuple(gb.value), hits.load()))


def channel_fan_in(seen: list[object]) -> None:
    tx, rx = sync.channel()
    probe = AtomicInt(0)

    def producer(tag: int, sender: sync.Sender[int]) -> None:
        with sender:
            sender.send(tag)
            probe.store(tag)

    with thread.scope() as scope:
        scope.spawn(producer, 1, tx.clone())
        scope.spawn(producer, 2, tx)
        first = rx.recv()
        middle = probe.load()
        rest = list(rx)
    seen.append((first, middle, tuple(rest)))


def condvar_handoff(seen: list[object]) -> None:
    box = sync.Mutex(None)
    ready = sync.Condvar()
    order = AtomicInt(0)

    def consumer() -> int:
        with box.lock() as guard:
            ready.wait_while(guard, lambda value: value is None)
            return order.fetch_add(1) * 10 + guard.value

    with thread.scope() as scope:
        handle = scope.spawn(consumer)
        with box.lock() as guard:
            guard.value = order.fetch_add(1)
        ready.notify_one()
    seen.append(handle.join())


def readers_and_a_writer(seen: list[object]) -> None:
    rw = sync.RwLock(0)
    observed = sync.Mutex([])

    def reader() -> None:
        with rw.read() as guard:
            value = guard.value
        with observed.lock() as log:
            log.value.append(value)

    def writer() -> None:
        with rw.write() as guard:
            guard.value += 1

    with thread.scope() as scope:
        scope.spawn(reader)
        scope.spawn(writer)
        scope.spawn(reader)
    with observed.lock() as log:
        seen.append(tuple(sorted(log.value)))


def condvar_wait_releases_the_mutex(seen: list[object]) -> None:
    """The release inside `wait` is a step on the mutex (a review found it keyed on the condvar)."""
    m = sync.Mutex(0, name="m")
    cv = sync.Condvar(name="cv")

    def prober() -> tuple[bool, int | None]:
        guard = m.try_lock()
        if guard is not None:
            guard.unlock()
            return (True, None)
        with m.lock() as held:
            return (False, held.value)  # 0: it got m while the main thread waited

    with m.lock() as guard:
        handle = thread.spawn(prober)
        cv.wait_timeout(guard, 1.0)
        guard.value = 1
    seen.append(handle.join())


def oncelock_publishes_in_its_own_step(seen: list[object]) -> None:
    once = sync.OnceLock(name="once")
    a, b = AtomicInt(0, name="a"), AtomicInt(0, name="b")

    def init() -> int:
        a.store(1)
        b.store(1)
        return 5

    def observer() -> tuple[int, int | None]:
        return (a.load(), once.get())

    handle = thread.spawn(observer)
    once.get_or_init(init)
    seen.append(handle.join())


def reads_are_scheduling_points(seen: list[object]) -> None:
    permits = sync.Semaphore(1, name="permits")
    gate = sync.Barrier(2, name="gate")

    def holder() -> None:
        with permits.acquire():
            pass

    def arriver() -> None:
        try:
            gate.wait(timeout=1.0)
        except sync.BrokenBarrierError:
            pass

    with thread.scope() as scope:
        scope.spawn(holder)
        scope.spawn(arriver)
        seen.append((permits.available(), gate.n_waiting))


PROGRAMS = [two_locks_and_a_counter, channel_fan_in, condvar_handoff, readers_and_a_writer,
            condvar_wait_releases_the_mutex, oncelock_publishes_in_its_own_step,
            reads_are_scheduling_points]


def test_the_review_cases_reach_every_outcome() -> None:
    """Outcomes a review showed the reduction (or the model) used to miss."""
    assert _outcomes(condvar_wait_releases_the_mutex, None)[0] == {(True, None), (False, 0),
                                                                     (False, 1)}
    assert _outcomes(oncelock_publishes_in_its_own_step, None)[0] == {(0, None), (0, 5),
                                                                        (1, None), (1, 5)}
    available = {permits for permits, _ in _outcomes(reads_are_scheduling_points, None)[0]}
    assert available == {0, 1}


def _outcomes(program: Callable[[list[object]], None], bound: int | None) -> tuple[set[object], int]:
    seen: list[object] = []
    report = concurrency.check(lambda: program(seen), "dfs", preemption_bound=bound,
                               iterations=200_000)
    assert report.exhausted
    return set(seen), report.iterations


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_sleep_sets_keep_every_outcome(program: Callable[[list[object]], None]) -> None:
    reduced, reduced_runs = _outcomes(program, None)
    full, full_runs = _outcomes(program, UNREDUCED)
    assert reduced == full
    assert reduced_runs <= full_runs


def test_sleep_sets_prune_independent_orderings() -> None:
    """Threads touching different locks: one schedule per outcome class, not per ordering."""

    def body() -> None:
        locks = [sync.Mutex(0) for _ in range(3)]

        def bump(lock: sync.Mutex[int]) -> None:
            for _ in range(2):
                with lock.lock() as guard:
                    guard.value += 1

        with thread.scope() as scope:
            for lock in locks:
                scope.spawn(bump, lock)

    reduced = concurrency.check(body, "dfs")
    full = concurrency.check(body, "dfs", preemption_bound=UNREDUCED, iterations=200_000)
    assert reduced.exhausted and full.exhausted
    assert reduced.iterations < full.iterations / 10
