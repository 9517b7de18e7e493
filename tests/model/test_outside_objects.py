"""Real-thread objects created outside a model execution and used inside it.

The execution's threads are greenlets sharing one OS thread: a real lock held
by one of them and wanted by another would block that OS thread for good, and
a checked lock would blame a re-lock that never happened. Both say instead
exactly what is wrong and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.backends import OUTSIDE_EXECUTION, execution_state, fast
from concurrency.backends import threading as checked

BACKENDS = {"fast": fast, "threading": checked}
WHAT_TO_DO = "Create the locks, channels and other primitives the test shares inside the checked function"


def _fails_saying_so(body: Callable[[], None]) -> None:
    with pytest.raises(concurrency.ScheduleFailure) as found:
        concurrency.check(body, "dfs")
    message = str(found.value)
    assert "created outside it" in message and WHAT_TO_DO in message, message
    assert "already locked by this thread" not in message
    assert execution_state.runtime is None


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_mutex_held_across_a_switch(backend: str) -> None:
    outside = BACKENDS[backend].Mutex(0)

    def body() -> None:
        def work() -> None:
            with outside.lock() as guard:
                guard.value += 1
                thread.yield_now()  # another model thread runs while the real lock is held

        with thread.scope() as scope:
            scope.spawn(work)
            scope.spawn(work)

    _fails_saying_so(body)
    assert not outside.is_locked(), "the refusal left the real lock held"


def test_a_channel_receive_that_would_block() -> None:
    tx, rx = sync.channel()  # outside any execution: this process's real-thread backend

    def body() -> None:
        def consume() -> None:
            rx.recv()  # nothing was sent: a real receive would block the OS thread

        with thread.scope() as scope:
            scope.spawn(consume)

    _fails_saying_so(body)
    tx.send(1)
    assert rx.recv() == 1, "the channel still works on real threads afterwards"


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_semaphore_and_a_condvar_wait(backend: str) -> None:
    module: Any = BACKENDS[backend]
    permits = module.Semaphore(0)
    mutex, condvar = module.Mutex(False), module.Condvar()

    def takes_a_permit() -> None:
        permits.acquire()

    def waits_on_the_condvar() -> None:
        with mutex.lock() as guard:
            while not guard.value:
                guard = condvar.wait(guard)

    _fails_saying_so(takes_a_permit)
    _fails_saying_so(waits_on_the_condvar)
    assert not mutex.is_locked()


def test_the_native_and_pure_messages_agree() -> None:
    assert "created outside it" in OUTSIDE_EXECUTION and WHAT_TO_DO in OUTSIDE_EXECUTION


def test_outside_objects_still_work_on_real_threads_after_a_check() -> None:
    outside = fast.Mutex(0)

    def body() -> None:
        with outside.lock() as guard:  # uncontended: nothing blocks, nothing to refuse
            guard.value += 1

    concurrency.check(body, "dfs")
    with outside.lock() as guard:
        assert guard.value >= 1
