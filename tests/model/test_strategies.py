"""The search strategies: exact DFS counts, seeded random walks, PCT's depth, reports.

The bodies here are tiny on purpose, so the number of schedules can be worked
out by hand: two threads that each append three times to a locked log have
C(6, 3) = 20 distinct histories, and DFS must run each exactly once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic


def appender(histories: Counter[str], rounds: int = 3) -> Callable[[], None]:
    """A body where threads `a` and `b` each append their tag `rounds` times under a lock.

    Every execution adds its history (say `"abbaab"`) to `histories`.
    """

    def body() -> None:
        log = sync.Mutex([])

        def append(tag: str) -> None:
            for _ in range(rounds):
                with log.lock() as guard:
                    guard.value.append(tag)

        with thread.scope() as s:
            s.spawn(append, "a")
            s.spawn(append, "b")
        with log.lock() as guard:
            histories["".join(guard.value)] += 1

    return body


def switches(history: str) -> int:
    """How often the history changes from one thread's tag to the other's."""
    return sum(1 for _ in itertools.groupby(history)) - 1


def all_histories() -> set[str]:
    """The 20 ways to interleave `aaa` with `bbb`."""
    return {"".join(p) for p in itertools.permutations("aaabbb")}


def lost_update() -> None:
    """A read-then-write increment: correct alone, loses an update if preempted in between."""
    counter = atomic.AtomicInt()

    def increment() -> None:
        seen = counter.load()
        counter.store(seen + 1)

    with thread.scope() as s:
        s.spawn(increment)
        s.spawn(increment)
    assert counter.load() == 2, "an increment was lost"


# --------------------------------------------------------------------------- dfs


def test_dfs_two_threads_one_lock_each_has_two_schedules() -> None:
    order: list[str] = []

    def body() -> None:
        m = sync.Mutex()

        def take(tag: str) -> None:
            with m.lock():
                order.append(tag)

        with thread.scope() as s:
            s.spawn(take, "a")
            s.spawn(take, "b")

    report = concurrency.check(body, "dfs")
    assert (report.iterations, report.exhausted) == (2, True)
    assert sorted(order[0:2]) == sorted(order[2:4]) == ["a", "b"]
    assert order[0:2] != order[2:4], "the two executions took the lock in the same order"


def test_dfs_visits_each_of_the_twenty_histories_exactly_once() -> None:
    histories: Counter[str] = Counter()
    report = concurrency.check(appender(histories), "dfs")
    assert report.iterations == 20
    assert report.exhausted
    assert report.seed is None
    assert set(histories) == all_histories()
    assert all(count == 1 for count in histories.values()), histories


def test_dfs_atomic_operations_are_each_a_decision() -> None:
    def body() -> None:
        cell = atomic.AtomicInt()

        def add_three() -> None:
            for _ in range(3):
                cell.fetch_add(1)

        first, second = thread.spawn(add_three), thread.spawn(add_three)
        first.join()
        second.join()
        assert cell.load() == 6

    report = concurrency.check(body, "dfs")
    assert (report.iterations, report.exhausted) == (20, True)


def test_dfs_single_thread_has_one_schedule() -> None:
    def body() -> None:
        m = sync.Mutex(0)
        for _ in range(5):
            with m.lock() as guard:
                guard.value += 1

    report = concurrency.check(body, "dfs")
    assert (report.iterations, report.exhausted) == (1, True)


def test_preemption_bound_zero_runs_each_thread_to_its_end() -> None:
    """Bound 0: a thread is only switched away from when it blocks or ends. Main blocks
    in the scope's join, so which worker goes first is a free choice: two schedules."""
    histories: Counter[str] = Counter()
    report = concurrency.check(appender(histories), "dfs", preemption_bound=0)
    assert (report.iterations, report.exhausted) == (2, True)
    assert set(histories) == {"aaabbb", "bbbaaa"}


@pytest.mark.parametrize(("bound", "count"), [(1, 6), (2, 14), (3, 18), (4, 20), (5, 20)])
def test_preemption_bound_limits_the_switches(bound: int, count: int) -> None:
    """Each preemption adds one switch to the history; the end of the first thread adds
    the one free switch. So bound b covers exactly the histories with <= b + 1 switches
    (2 + 4 + 8 + 4 + 2 histories have 1, 2, 3, 4, 5 switches), each once."""
    histories: Counter[str] = Counter()
    report = concurrency.check(appender(histories), "dfs", preemption_bound=bound)
    assert (report.iterations, report.exhausted) == (count, True)
    assert set(histories) == {h for h in all_histories() if switches(h) <= bound + 1}
    assert all(n == 1 for n in histories.values()), histories


def test_dfs_budget_stops_before_exhausting() -> None:
    histories: Counter[str] = Counter()
    report = concurrency.check(appender(histories), "dfs", iterations=7)
    assert (report.iterations, report.exhausted) == (7, False)
    assert len(histories) == 7


def test_dfs_finds_a_bug_and_reports_the_execution_number() -> None:
    with pytest.raises(concurrency.ScheduleFailure) as caught:
        concurrency.check(lost_update, "dfs")
    failure = caught.value
    assert failure.strategy == "dfs" and failure.seed is None
    assert failure.iteration >= 2, "the first DFS schedule runs without preemption and passes"
    # `.iteration` is 1-based: the executions before it pass.
    report = concurrency.check(lost_update, "dfs", iterations=failure.iteration - 1)
    assert report.iterations == failure.iteration - 1 and not report.exhausted


def test_dfs_detects_a_nondeterministic_body() -> None:
    calls = [0]

    def body() -> None:
        calls[0] += 1
        workers = 2 if calls[0] == 1 else 3  # depends on state left over from earlier runs
        cell = atomic.AtomicInt()
        with thread.scope() as s:
            for _ in range(workers):
                s.spawn(cell.fetch_add, 1)

    with pytest.raises(RuntimeError, match="not deterministic"):
        concurrency.check(body, "dfs")


# --------------------------------------------------------------------------- random


def test_random_is_seeded() -> None:
    first: Counter[str] = Counter()
    second: Counter[str] = Counter()
    other: Counter[str] = Counter()
    a = concurrency.check(appender(first), "random", iterations=40, seed=11)
    b = concurrency.check(appender(second), "random", iterations=40, seed=11)
    concurrency.check(appender(other), "random", iterations=40, seed=12)
    assert (a.strategy, a.iterations, a.seed, a.exhausted) == ("random", 40, 11, False)
    assert (a.iterations, a.steps, a.seed) == (b.iterations, b.steps, b.seed)
    assert first == second, "the same seed must explore the same schedules"
    assert first != other, "another seed explores differently"
    assert len(first) > 5, "a random walk should see many of the 20 histories"


def test_random_default_seed_is_stable() -> None:
    runs = []
    for _ in range(2):
        with pytest.raises(concurrency.ScheduleFailure) as caught:
            concurrency.check(lost_update, "random", iterations=200)
        runs.append(caught.value)
    assert runs[0].seed == runs[1].seed is not None
    assert runs[0].iteration == runs[1].iteration
    assert runs[0].replay == runs[1].replay
    assert f"seed {runs[0].seed}" in str(runs[0])


def test_same_seed_fails_at_the_same_iteration_with_the_same_token() -> None:
    found = []
    for seed in (5, 5, 6):
        with pytest.raises(concurrency.ScheduleFailure) as caught:
            concurrency.check(lost_update, "random", iterations=500, seed=seed)
        found.append(caught.value)
    assert (found[0].iteration, found[0].replay) == (found[1].iteration, found[1].replay)
    assert found[0].seed == 5 and found[2].seed == 6
    assert found[0].iteration >= 1


# --------------------------------------------------------------------------- pct


def test_pct_depth_one_never_interleaves_threads_that_do_not_block() -> None:
    """Depth 1 has no priority change points: the highest-priority thread runs to its end."""
    histories: Counter[str] = Counter()
    report = concurrency.check(appender(histories), "pct", iterations=200, pct_depth=1, seed=3)
    assert report.iterations == 200 and not report.exhausted
    assert set(histories) == {"aaabbb", "bbbaaa"}, "random priorities pick either thread first"


def test_pct_depth_one_misses_a_bug_that_needs_a_preemption() -> None:
    report = concurrency.check(lost_update, "pct", iterations=300, pct_depth=1, seed=3)
    assert report.iterations == 300


def test_pct_depth_two_finds_it() -> None:
    with pytest.raises(concurrency.ScheduleFailure) as caught:
        concurrency.check(lost_update, "pct", iterations=300, pct_depth=2, seed=3)
    failure = caught.value
    assert failure.strategy == "pct" and failure.seed == 3
    assert "pct (seed 3, depth 2)" in str(failure)


@pytest.mark.parametrize("depth", [2, 3])
def test_pct_depth_bounds_the_priority_changes(depth: int) -> None:
    """d - 1 change points: each can cut the running thread once, so a history of two
    threads switches at most d times (the last switch being the end of a thread)."""
    histories: Counter[str] = Counter()
    concurrency.check(appender(histories), "pct", iterations=300, pct_depth=depth, seed=3)
    assert max(switches(h) for h in histories) == depth, histories
    assert len(histories) > 2


def test_pct_is_seeded() -> None:
    first: Counter[str] = Counter()
    second: Counter[str] = Counter()
    concurrency.check(appender(first), "pct", iterations=60, seed=21)
    concurrency.check(appender(second), "pct", iterations=60, seed=21)
    assert first == second


# --------------------------------------------------------------------------- reports


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_only_dfs_reports_exhausted(strategy: str) -> None:
    report = concurrency.check(lambda: None, strategy, iterations=5, seed=1)
    assert (report.iterations, report.exhausted, report.seed) == (5, False, 1)
    assert report.strategy == strategy
    assert "no failure" in str(report) and "whole schedule space" not in str(report)


def test_dfs_report_text() -> None:
    report = concurrency.check(lambda: None, "dfs")
    assert (report.iterations, report.exhausted) == (1, True)
    assert "the whole schedule space" in str(report)
