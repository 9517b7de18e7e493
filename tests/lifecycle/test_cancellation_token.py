"""`CancellationToken`: cancel, wait, children, on_cancel callbacks, guard()."""

from __future__ import annotations

import gc
import sys
import time
import weakref
from typing import Any

import pytest
from lifecycle_helpers import real_threads_only

import concurrency
from concurrency import thread
from concurrency.lifecycle import CancelGuard, CancellationToken
from concurrency.sync.atomic import AtomicInt


@pytest.fixture
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Collect what reaches `sys.unraisablehook` during the test."""
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


# --------------------------------------------------------------------------- one thread


@concurrency.test(iterations=1)
def test_cancel_sets_the_flag_once_and_for_all() -> None:
    token = CancellationToken()
    assert not token.is_cancelled()
    assert token.wait(timeout=0) is False
    token.cancel()
    token.cancel()  # idempotent
    assert token.is_cancelled()
    assert token.wait() is True
    assert token.wait(timeout=0) is True


def test_bad_arguments_are_named() -> None:
    token = CancellationToken()
    with pytest.raises(ValueError, match=r"CancellationToken\.wait"):
        token.wait(timeout=-1)
    with pytest.raises(TypeError, match="not callable"):
        token.on_cancel(42)  # type: ignore[arg-type]


def test_repr_and_names() -> None:
    token = CancellationToken(name="root")
    assert token.name == "root"
    assert "root" in repr(token) and "active" in repr(token)
    child = token.child_token()
    assert child.name.startswith("root/")
    token.cancel()
    assert "cancelled" in repr(child)


# --------------------------------------------------------------------------- children


@concurrency.test(iterations=1)
def test_cancelling_a_parent_cancels_the_whole_subtree() -> None:
    parent = CancellationToken()
    child = parent.child_token()
    grandchild = child.child_token()
    parent.cancel()
    assert child.is_cancelled() and grandchild.is_cancelled()


@concurrency.test(iterations=1)
def test_cancelling_a_child_leaves_its_parent_and_siblings_alone() -> None:
    parent = CancellationToken()
    child, sibling = parent.child_token(), parent.child_token()
    grandchild = child.child_token()
    child.cancel()
    assert grandchild.is_cancelled()
    assert not parent.is_cancelled()
    assert not sibling.is_cancelled()


@concurrency.test(iterations=1)
def test_the_child_of_a_cancelled_parent_starts_cancelled() -> None:
    parent = CancellationToken()
    parent.cancel()
    child = parent.child_token()
    assert child.is_cancelled()
    assert child.wait(timeout=0) is True


def test_a_cancelled_child_is_not_kept_alive_by_its_parent() -> None:
    parent = CancellationToken()
    child = parent.child_token()
    ref = weakref.ref(child)
    child.cancel()
    del child
    gc.collect()
    assert ref() is None, "the parent still holds a child that was cancelled on its own"


@concurrency.test
def test_a_child_created_while_the_parent_is_cancelled_is_cancelled() -> None:
    parent = CancellationToken()
    children: list[CancellationToken] = []
    h = thread.spawn(lambda: children.append(parent.child_token()))
    parent.cancel()
    h.join()
    assert children[0].is_cancelled()


@concurrency.test
def test_a_subtree_reads_cancelled_as_soon_as_cancel_returns_even_when_racing() -> None:
    """Another thread may still be cancelling the subtree node by node; it reads cancelled."""
    parent = CancellationToken()
    child = parent.child_token()
    grandchild = child.child_token()
    racer = thread.spawn(parent.cancel)
    parent.cancel()
    assert grandchild.is_cancelled() and child.is_cancelled()
    assert grandchild.wait() is True
    racer.join()


# --------------------------------------------------------------------------- waiting


@concurrency.test
def test_wait_parks_until_another_thread_cancels() -> None:
    token = CancellationToken()
    waiter = thread.spawn(token.wait)
    thread.spawn(token.cancel).join()
    assert waiter.join() is True


@concurrency.test
def test_waiting_on_a_child_wakes_when_the_parent_is_cancelled() -> None:
    parent = CancellationToken()
    child = parent.child_token()
    waiter = thread.spawn(child.wait)
    parent.cancel()
    assert waiter.join() is True


@real_threads_only
def test_a_timed_wait_returns_false_after_about_the_timeout() -> None:
    token = CancellationToken()
    start = time.monotonic()
    assert token.wait(timeout=0.1) is False
    elapsed = time.monotonic() - start
    assert 0.06 <= elapsed < 5.0, f"wait(0.1) returned after {elapsed:.3f}s"


# --------------------------------------------------------------------------- on_cancel


@concurrency.test
def test_callbacks_run_exactly_once_when_two_threads_cancel() -> None:
    token = CancellationToken()
    calls = AtomicInt(0)
    token.on_cancel(lambda: calls.fetch_add(1))
    a = thread.spawn(token.cancel)
    b = thread.spawn(token.cancel)
    a.join()
    b.join()
    assert calls.load() == 1


@concurrency.test
def test_a_callback_registered_during_cancel_runs_exactly_once() -> None:
    token = CancellationToken()
    calls = AtomicInt(0)
    canceller = thread.spawn(token.cancel)
    token.on_cancel(lambda: calls.fetch_add(1))
    canceller.join()
    assert calls.load() == 1


@concurrency.test(iterations=1)
def test_callbacks_run_in_registration_order_and_at_once_when_already_cancelled() -> None:
    token = CancellationToken()
    order: list[str] = []
    token.on_cancel(lambda: order.append("first"))
    token.on_cancel(lambda: order.append("second"))
    assert order == []
    token.cancel()
    assert order == ["first", "second"]
    token.on_cancel(lambda: order.append("late"))
    assert order == ["first", "second", "late"]
    token.cancel()
    assert order == ["first", "second", "late"]


@concurrency.test(iterations=1)
def test_a_child_callback_runs_when_the_parent_is_cancelled() -> None:
    parent = CancellationToken()
    seen: list[str] = []
    parent.child_token().on_cancel(lambda: seen.append("child"))
    parent.cancel()
    assert seen == ["child"]


def test_a_failing_callback_is_reported_and_the_others_still_run(unraisable: list[Any]) -> None:
    token = CancellationToken(name="t")
    ran: list[str] = []

    def broken() -> None:
        raise ValueError("callback failed")

    token.on_cancel(lambda: ran.append("before"))
    token.on_cancel(broken)
    token.on_cancel(lambda: ran.append("after"))
    token.cancel()  # does not raise
    assert ran == ["before", "after"]
    assert len(unraisable) == 1
    report = unraisable[0]
    assert isinstance(report.exc_value, ValueError)
    assert "on_cancel callback of t" in report.err_msg
    assert report.object is broken


def test_a_failing_immediate_callback_is_reported_too(unraisable: list[Any]) -> None:
    token = CancellationToken()
    token.cancel()
    token.on_cancel(lambda: 1 / 0)
    assert [type(r.exc_value) for r in unraisable] == [ZeroDivisionError]


def test_callbacks_run_outside_the_token_lock() -> None:
    """A callback may call back into the same token without deadlocking."""
    token = CancellationToken()
    seen: list[object] = []

    def reenter() -> None:
        seen.append(token.is_cancelled())
        seen.append(token.wait(timeout=0))
        seen.append(token.child_token().is_cancelled())
        token.on_cancel(lambda: seen.append("nested"))
        token.cancel()

    token.on_cancel(reenter)
    canceller = thread.spawn(token.cancel)
    canceller.join(timeout=10)  # a callback run under the lock would deadlock or raise here
    assert seen == [True, True, True, "nested"]


# --------------------------------------------------------------------------- guard


@concurrency.test(iterations=1)
def test_guard_cancels_on_exit() -> None:
    token = CancellationToken()
    with token.guard() as guard:
        assert isinstance(guard, CancelGuard)
        assert not token.is_cancelled()
    assert token.is_cancelled()


@concurrency.test(iterations=1)
def test_guard_cancels_when_the_block_raises() -> None:
    token = CancellationToken()
    with pytest.raises(KeyError), token.guard():
        raise KeyError("boom")
    assert token.is_cancelled()


@concurrency.test(iterations=1)
def test_a_disarmed_guard_leaves_the_token_alone() -> None:
    token = CancellationToken()
    with token.guard() as guard:
        guard.disarm()
    assert not token.is_cancelled()
