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


PROGRAMS = [two_locks_and_a_counter, channel_fan_in, condvar_handoff, readers_and_a_writer]


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
