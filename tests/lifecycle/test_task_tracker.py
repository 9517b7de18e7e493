"""`TaskTracker`: spawn, close/reopen, wait, len."""

from __future__ import annotations

import pytest
from lifecycle_helpers import real_threads_only

import concurrency
from concurrency.lifecycle import CancellationToken, TaskTracker
from concurrency.sync.atomic import AtomicInt


@concurrency.test
def test_wait_returns_once_closed_and_every_task_finished() -> None:
    tracker = TaskTracker()
    done = AtomicInt(0)
    a = tracker.spawn(done.fetch_add, 1)
    b = tracker.spawn(done.fetch_add, 1)
    tracker.close()
    assert tracker.wait() is True
    assert done.load() == 2
    assert len(tracker) == 0
    a.join()
    b.join()


@concurrency.test
def test_a_task_spawned_by_a_task_after_close_is_still_waited_for() -> None:
    tracker = TaskTracker()
    done = AtomicInt(0)

    def parent() -> None:
        tracker.spawn(done.fetch_add, 1, name="late")

    tracker.spawn(parent)
    tracker.close()
    assert tracker.wait() is True
    assert done.load() == 1


@concurrency.test(iterations=1)
def test_wait_is_false_until_closed_even_when_empty() -> None:
    tracker = TaskTracker()
    assert tracker.wait(timeout=0) is False
    assert not tracker.is_closed()
    tracker.close()
    assert tracker.is_closed()
    assert tracker.wait(timeout=0) is True
    tracker.reopen()
    assert not tracker.is_closed()
    assert tracker.wait(timeout=0) is False


@concurrency.test(iterations=1)
def test_len_counts_running_tasks_and_wait_times_out_while_one_runs() -> None:
    tracker = TaskTracker()
    release = CancellationToken()
    handle = tracker.spawn(release.wait, name="blocked")
    assert len(tracker) == 1
    tracker.close()
    assert tracker.wait(timeout=0) is False
    release.cancel()
    assert tracker.wait() is True
    assert len(tracker) == 0
    assert handle.join() is True


@concurrency.test(iterations=1)
def test_handles_carry_names_results_and_exceptions() -> None:
    tracker = TaskTracker()

    def compute(x: int, *, plus: int) -> int:
        return x + plus

    def fail() -> None:
        raise KeyError("task failed")

    ok = tracker.spawn(compute, 40, plus=2)
    named = tracker.spawn(compute, 1, plus=1, name="adder")
    bad = tracker.spawn(fail)
    assert ok.name == "compute"
    assert named.name == "adder"
    assert ok.join() == 42
    assert named.join() == 2
    with pytest.raises(KeyError, match="task failed"):
        bad.join()
    tracker.close()
    assert tracker.wait() is True  # a task that raised still counts as finished


def test_spawning_something_not_callable_registers_nothing() -> None:
    tracker = TaskTracker()
    with pytest.raises(TypeError, match="not callable"):
        tracker.spawn(3)  # type: ignore[arg-type]
    assert len(tracker) == 0
    with pytest.raises(ValueError, match=r"TaskTracker\.wait"):
        tracker.wait(timeout=-1)


@real_threads_only
def test_a_timed_wait_gives_up_while_a_task_keeps_running() -> None:
    tracker = TaskTracker(name="t")
    release = CancellationToken()
    tracker.spawn(release.wait)
    tracker.close()
    assert tracker.wait(timeout=0.05) is False
    assert "1 running" in repr(tracker)
    release.cancel()
    assert tracker.wait(timeout=10) is True
