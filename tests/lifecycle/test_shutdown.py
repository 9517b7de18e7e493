"""`Shutdown` and `Subsystem`: ordered drains, deadlines, stragglers, fatal errors, exit codes."""

from __future__ import annotations

import pytest
from lifecycle_helpers import real_threads_only

import concurrency
from concurrency import thread
from concurrency.lifecycle import (
    EXIT_CLEAN,
    EXIT_FATAL,
    EXIT_UNCLEAN,
    EXIT_WATCHDOG,
    CancellationToken,
    DrainResult,
    Shutdown,
    Subsystem,
)
from concurrency.sync.atomic import AtomicInt


def _wait_then_count(token: CancellationToken, finished: AtomicInt) -> None:
    token.wait()
    finished.fetch_add(1)


@concurrency.test
def test_two_subsystems_of_two_tasks_drain_without_losing_a_task() -> None:
    shutdown = Shutdown()
    finished = AtomicInt(0)
    for name in ("front", "back"):
        subsystem = shutdown.subsystem(name)
        for _ in range(2):
            subsystem.spawn(_wait_then_count, subsystem.token, finished)
    results = shutdown.drain()
    assert [r.name for r in results] == ["front", "back"]
    assert all(r.clean and r.stragglers == [] for r in results)
    assert finished.load() == 4
    assert shutdown.exit_code() == EXIT_CLEAN
    assert not shutdown.is_fatal()


@concurrency.test
def test_a_signal_like_cancel_from_another_thread_releases_wait_and_drain() -> None:
    shutdown = Shutdown()
    worker = shutdown.subsystem("worker")
    finished = AtomicInt(0)
    worker.spawn(_wait_then_count, worker.token, finished)
    thread.spawn(shutdown.root.cancel)
    assert shutdown.wait() is True
    assert shutdown.drain() == [DrainResult("worker", [])]
    assert finished.load() == 1


@real_threads_only
def test_a_task_that_ignores_cancellation_is_named_at_the_deadline() -> None:
    shutdown = Shutdown()
    stuck = shutdown.subsystem("stuck", deadline=0.2)
    after = shutdown.subsystem("after", deadline=5)
    release = CancellationToken()  # not derived from the root: the task ignores shutdown
    finished = AtomicInt(0)
    stubborn = stuck.spawn(release.wait, name="stubborn")
    stuck.spawn(_wait_then_count, stuck.token, finished, name="polite")
    after.spawn(_wait_then_count, after.token, finished, name="polite")

    results = shutdown.drain()

    assert [(r.name, r.clean, r.stragglers) for r in results] == [
        ("stuck", False, ["stubborn"]),
        ("after", True, []),
    ]
    assert finished.load() == 2
    assert shutdown.exit_code() == EXIT_UNCLEAN
    release.cancel()
    assert stubborn.join(timeout=10) is True


@real_threads_only
def test_drain_accepts_a_deadline_of_its_own() -> None:
    shutdown = Shutdown()
    slow = shutdown.subsystem("slow")  # no deadline of its own: would wait forever
    release = CancellationToken()
    handle = slow.spawn(release.wait, name="slowpoke")
    assert slow.drain(deadline=0.05) == DrainResult("slow", ["slowpoke"])
    release.cancel()
    assert slow.drain(deadline=10).clean
    handle.join()


@concurrency.test(iterations=1)
def test_drain_order_can_be_given_and_the_rest_follow_in_creation_order() -> None:
    shutdown = Shutdown()
    for name in ("a", "b", "c", "d"):
        shutdown.subsystem(name)
    assert [r.name for r in shutdown.drain(order=["c", "a"])] == ["c", "a", "b", "d"]
    assert [r.name for r in shutdown.drain()] == ["a", "b", "c", "d"]


def test_bad_drain_orders_and_names_are_refused() -> None:
    shutdown = Shutdown()
    shutdown.subsystem("a")
    with pytest.raises(ValueError, match=r"no subsystem named 'zz'.*'a'"):
        shutdown.drain(order=["zz"])
    with pytest.raises(ValueError, match="twice"):
        shutdown.drain(order=["a", "a"])
    with pytest.raises(TypeError, match="list of subsystem names"):
        shutdown.drain(order="a")
    with pytest.raises(ValueError, match="already a subsystem named 'a'"):
        shutdown.subsystem("a")
    with pytest.raises(ValueError, match="non-empty str"):
        shutdown.subsystem("")
    with pytest.raises(ValueError, match="deadline"):
        shutdown.subsystem("b", deadline=-1)
    assert not shutdown.root.is_cancelled(), "a refused drain must not start shutting down"


@concurrency.test(iterations=1)
def test_subsystem_tokens_are_children_of_the_root() -> None:
    shutdown = Shutdown()
    a, b = shutdown.subsystem("a"), shutdown.subsystem("b")
    a.token.cancel()
    assert not shutdown.root.is_cancelled() and not b.token.is_cancelled()
    shutdown.root.cancel()
    assert b.token.is_cancelled()
    late = shutdown.subsystem("late")
    assert late.token.is_cancelled()
    assert [s.name for s in shutdown.subsystems()] == ["a", "b", "late"]


@concurrency.test
def test_a_task_that_returns_while_it_should_run_is_fatal() -> None:
    shutdown = Shutdown()
    server = shutdown.subsystem("server")
    other = shutdown.subsystem("other")
    finished = AtomicInt(0)
    other.spawn(_wait_then_count, other.token, finished)
    server.spawn_fatal_on_exit(lambda: None, name="listener")
    assert shutdown.wait() is True  # the early return cancelled the root
    results = shutdown.drain()
    assert all(r.clean for r in results)
    assert finished.load() == 1
    assert shutdown.is_fatal()
    assert shutdown.exit_code() == EXIT_FATAL
    [reason] = shutdown.fatal_reasons()
    assert reason.startswith("server: task 'listener' returned")


@concurrency.test(iterations=1)
def test_a_task_that_raises_while_it_should_run_is_fatal_and_join_sees_it() -> None:
    shutdown = Shutdown()
    server = shutdown.subsystem("server")

    def crash() -> None:
        raise OSError("port in use")

    handle = server.spawn_fatal_on_exit(crash)
    with pytest.raises(OSError, match="port in use"):
        handle.join()
    assert shutdown.root.is_cancelled()
    assert "raised OSError('port in use')" in shutdown.fatal_reasons()[0]


@concurrency.test
def test_a_task_that_ends_after_cancellation_is_not_fatal() -> None:
    shutdown = Shutdown()
    server = shutdown.subsystem("server")
    handle = server.spawn_fatal_on_exit(server.token.wait)
    shutdown.drain()
    assert handle.join() is True
    assert not shutdown.is_fatal()
    assert shutdown.exit_code() == EXIT_CLEAN


@concurrency.test(iterations=1)
def test_report_fatal_cancels_the_root_and_every_subsystem() -> None:
    shutdown = Shutdown()
    a, b = shutdown.subsystem("a"), shutdown.subsystem("b")
    b.report_fatal("disk full")
    assert shutdown.root.is_cancelled() and a.token.is_cancelled()
    assert shutdown.fatal_reasons() == ["b: disk full"]
    assert shutdown.exit_code() == EXIT_FATAL


@concurrency.test(iterations=1)
def test_a_standalone_subsystem_works_without_a_shutdown() -> None:
    root = CancellationToken()
    subsystem = Subsystem("solo", root, deadline=None)
    handle = subsystem.spawn(subsystem.token.wait)
    root.cancel()
    assert subsystem.drain().clean
    assert handle.join() is True


def test_wait_times_out_then_succeeds_and_codes_are_distinct() -> None:
    shutdown = Shutdown()
    assert shutdown.wait(timeout=0) is False
    shutdown.root.cancel()
    assert shutdown.wait(timeout=0) is True
    assert len({EXIT_CLEAN, EXIT_FATAL, EXIT_UNCLEAN, EXIT_WATCHDOG}) == 4
    assert (EXIT_CLEAN, EXIT_FATAL, EXIT_WATCHDOG) == (0, 1, 3)


def test_signal_handlers_off_the_main_thread_raise_a_clear_error() -> None:
    shutdown = Shutdown()
    handle = thread.spawn(shutdown.install_signal_handlers, name="not-main")
    with pytest.raises(RuntimeError, match=r"main thread.*'not-main'"):
        handle.join(timeout=10)


def test_watchdog_arguments_are_checked() -> None:
    shutdown = Shutdown()
    with pytest.raises(ValueError, match="start_watchdog"):
        shutdown.start_watchdog(-1)
    with pytest.raises(TypeError, match="start_watchdog"):
        shutdown.start_watchdog(None)  # type: ignore[arg-type]


@pytest.mark.timeout(900)
@pytest.mark.skipif(concurrency.backend() != "dfs", reason="one exhaustive search per run: the dfs session")
def test_two_subsystems_of_two_tasks_explored_exhaustively() -> None:
    """Every schedule of 2 subsystems x 2 tasks with at most one preemption: no deadlock, no task lost.

    Unbounded, the space exceeds a million executions even with sleep sets (each lifecycle
    operation is several facade operations); one preemption covers ~20,000 schedules.
    """
    body = test_two_subsystems_of_two_tasks_drain_without_losing_a_task.__wrapped__  # type: ignore[attr-defined]
    report = concurrency.check(body, "dfs", preemption_bound=1, iterations=1_000_000)
    assert report.exhausted, report
    assert report.iterations > 1_000, report
