"""Interrupts from outside a search (Ctrl-C, SystemExit, pytest-timeout) propagate as themselves.

An interrupt is never the test's verdict: it must not become a failing
interleaving, a fake deadlock or a nondeterminism error, and the execution's
threads must be torn down so the next search starts clean.
"""

from __future__ import annotations

import _thread
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.backends import execution_state

SEARCHES = 50


def correct_counter() -> None:
    """A correct two-thread test: every schedule passes."""
    counter = sync.Mutex(0)
    done = sync.Condvar()

    def work() -> None:
        for _ in range(3):
            with counter.lock() as guard:
                guard.value += 1
                done.notify_all()

    with thread.scope() as scope:
        scope.spawn(work)
        scope.spawn(work)
    with counter.lock() as guard:
        while guard.value < 6:
            guard = done.wait(guard)
        assert guard.value == 6


class _Interrupter:
    """Delivers SIGINT to the main thread `delay` seconds after `start()`, from another thread,
    and again every second until stopped.

    Python itself loses a signal that lands in a weakref callback or a finalizer
    (it is reported as unraisable), so a single shot may never arrive; what the
    tests check is that whatever arrives comes out as KeyboardInterrupt.
    """

    kept: list[threading.Thread] = []  # a Thread freed mid-search runs such a callback

    def __init__(self, delay: float, signum: int = signal.SIGINT) -> None:
        self.stopped = threading.Event()
        self.signum = signum
        self.timer = threading.Thread(target=self._fire, args=(delay,), daemon=True)
        self.kept.append(self.timer)

    def _fire(self, delay: float) -> None:
        time.sleep(delay)
        while True:
            _thread.interrupt_main(self.signum)
            if self.stopped.wait(1.0):  # again only if the first one was lost
                return

    def start(self) -> None:
        self.timer.start()

    def join(self) -> None:
        self.stopped.set()
        if self.timer.ident is not None:
            self.timer.join()


def _until_interrupted(search: Callable[[], object], delay: float,
                       signum: int = signal.SIGINT) -> BaseException | None:
    """Run `search` over and over until SIGINT lands `delay` seconds in; what it raised.

    The signal is always consumed in here, even when something else ended the
    search first (then that something is returned, for the assertion to show).
    """
    timer = _Interrupter(delay, signum)
    raised: BaseException | None = None
    try:
        timer.start()
        while True:
            search()
    except BaseException as exc:
        raised = exc
    finally:
        timer.join()
        try:  # a signal still pending lands here, not in pytest's own code
            for _ in range(50):
                time.sleep(0.001)
        except BaseException as late:
            raised = raised if raised is not None else late
    return raised


@pytest.fixture
def main_thread_only() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        # Known gap (issue 8 note): on 3.13t a signal can leave a model execution
        # installed after the interrupt propagates, and every later test inherits it.
        pytest.skip("signal fuzzing of the model is not yet reliable on free-threaded builds")
    yield


@pytest.mark.usefixtures("main_thread_only")
@pytest.mark.parametrize("strategy", ["random", "pct", "dfs"])
def test_sigint_at_random_moments_is_only_ever_keyboard_interrupt(strategy: str) -> None:
    rng = random.Random(f"interrupts-{strategy}")
    for search in range(SEARCHES):
        raised = _until_interrupted(
            lambda: concurrency.check(correct_counter, strategy, iterations=10**9, seed=search,  # noqa: B023
                                      preemption_bound=2 if strategy == "dfs" else None),
            rng.uniform(0.0, 0.03),
        )
        assert type(raised) is KeyboardInterrupt, f"search {search}: {raised!r}"
        assert execution_state.runtime is None, f"search {search} left an execution installed"
    # The next search starts clean and still proves the test correct.
    report = concurrency.check(correct_counter, "dfs", iterations=100_000, preemption_bound=1)
    assert report.exhausted


class FakeTimeout(BaseException):
    """What pytest-timeout's SIGALRM handler raises (`pytest.fail.Exception`): not an Exception."""


@pytest.mark.usefixtures("main_thread_only")
def test_an_exception_from_a_signal_handler_propagates_as_itself() -> None:
    def on_alarm(signum: int, frame: object) -> None:
        raise FakeTimeout("timed out")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        for delay in (0.001, 0.005, 0.02):
            raised = _until_interrupted(
                lambda: concurrency.check(correct_counter, "random", iterations=10**9), delay,
                signal.SIGALRM)
            assert type(raised) is FakeTimeout, repr(raised)
            assert execution_state.runtime is None
    finally:
        signal.signal(signal.SIGALRM, previous)


def _raises_in_thread(error: Callable[[], BaseException]) -> Callable[[], None]:
    def body() -> None:
        def work() -> None:
            raise error()

        with thread.scope() as scope:
            scope.spawn(work)

    return body


def test_keyboard_interrupt_raised_by_a_model_thread_is_not_a_failing_interleaving() -> None:
    with pytest.raises(KeyboardInterrupt):
        concurrency.check(_raises_in_thread(KeyboardInterrupt), "random", iterations=10)
    with pytest.raises(SystemExit):
        concurrency.check(_raises_in_thread(lambda: SystemExit(3)), "dfs")
    assert execution_state.runtime is None


def test_the_tests_own_base_exceptions_are_still_failures() -> None:
    """A Panic (a BaseException) raised by the test's own code is a bug it found."""
    with pytest.raises(concurrency.ScheduleFailure, match="Panic"):
        concurrency.check(_raises_in_thread(lambda: concurrency.Panic("boom")), "random",
                          iterations=10)


@pytest.mark.usefixtures("main_thread_only")
def test_sigint_during_replay_propagates() -> None:
    def racy() -> None:
        box = sync.Mutex(0)

        def bump() -> None:
            with box.lock() as guard:
                value = guard.value
            with box.lock() as guard:
                guard.value = value + 1

        with thread.scope() as scope:
            scope.spawn(bump)
            scope.spawn(bump)
        with box.lock() as guard:
            assert guard.value == 2

    with pytest.raises(concurrency.ScheduleFailure) as found:
        concurrency.check(racy, "dfs")
    token = found.value.replay

    def replay_once() -> None:
        with pytest.raises(concurrency.ScheduleFailure):
            concurrency.replay(racy, token)

    rng = random.Random("replay")
    for _ in range(10):
        raised = _until_interrupted(replay_once, rng.uniform(0.0, 0.02))
        assert type(raised) is KeyboardInterrupt, repr(raised)
        assert execution_state.runtime is None


@pytest.mark.usefixtures("main_thread_only")
def test_an_exception_subclass_from_a_signal_handler_propagates_as_itself() -> None:
    """`raise TimeoutError` in a SIGALRM handler is an outside timeout, not the test's failure."""
    class Deadline:
        def __call__(self, signum: int, frame: object) -> None:
            raise TimeoutError("the whole run took too long")

    previous = signal.signal(signal.SIGALRM, Deadline())
    try:
        for delay in (0.001, 0.004, 0.015):
            raised = _until_interrupted(
                lambda: concurrency.check(correct_counter, "random", iterations=10**9), delay,
                signal.SIGALRM)
            assert type(raised) is TimeoutError and "took too long" in str(raised), repr(raised)
            assert execution_state.runtime is None
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_pytest_skip_in_a_model_body_skips_as_on_real_threads() -> None:
    def skips() -> None:
        def work() -> None:
            pytest.skip("not on this platform")

        with thread.scope() as scope:
            scope.spawn(work)

    with pytest.raises(pytest.skip.Exception, match="not on this platform"):
        concurrency.check(skips, "dfs")
