"""`wait_any` over tokens, receivers, trackers and nested `AnyOf`/`AllOf` groups."""

from __future__ import annotations

import time

import pytest
from lifecycle_helpers import real_threads_only

import concurrency
from concurrency import sync, thread
from concurrency.lifecycle import AllOf, AnyOf, CancellationToken, TaskTracker, wait_any


@concurrency.test(iterations=1)
def test_returns_the_ready_ones_in_argument_order() -> None:
    a, b, c = CancellationToken(), CancellationToken(), CancellationToken()
    assert wait_any(a, b, c, timeout=0) == []
    c.cancel()
    a.cancel()
    assert wait_any(a, b, c) == [a, c]


@concurrency.test(iterations=1)
def test_a_receiver_with_a_message_is_ready_and_keeps_the_message() -> None:
    tx, rx = sync.channel()
    assert wait_any(rx, timeout=0) == []
    tx.send("hello")
    assert wait_any(rx) == [rx]
    assert wait_any(rx) == [rx]  # still there: nothing was consumed
    assert rx.try_recv() == "hello"
    assert wait_any(rx, timeout=0) == []


@concurrency.test(iterations=1)
def test_a_disconnected_or_closed_receiver_is_ready() -> None:
    tx, rx = sync.channel()
    tx.close()
    assert wait_any(rx) == [rx]
    with pytest.raises(sync.Disconnected):
        rx.recv()
    _, rx2 = sync.sync_channel(1)
    rx2.close()
    assert wait_any(rx2) == [rx2]


@concurrency.test
def test_parks_until_another_thread_sends() -> None:
    tx, rx = sync.channel()
    token = CancellationToken()
    sender = thread.spawn(tx.send, 7)
    assert wait_any(token, rx) == [rx]
    assert rx.recv() == 7
    sender.join()


@concurrency.test
def test_parks_until_a_rendezvous_sender_offers_a_message() -> None:
    tx, rx = sync.sync_channel(0)
    sender = thread.spawn(tx.send, "handoff")
    assert wait_any(rx) == [rx]
    assert rx.recv() == "handoff"
    sender.join()


@concurrency.test
def test_parks_until_the_last_sender_closes() -> None:
    tx, rx = sync.channel()
    closer = thread.spawn(tx.close)
    assert wait_any(rx) == [rx]
    closer.join()


@concurrency.test
def test_parks_until_another_thread_cancels() -> None:
    _, rx = sync.channel()
    token = CancellationToken()
    canceller = thread.spawn(token.cancel)
    assert wait_any(rx, token) == [token]
    canceller.join()


@concurrency.test
def test_a_tracker_is_ready_once_closed_and_empty() -> None:
    tracker = TaskTracker()
    release = CancellationToken()
    tracker.spawn(release.wait)
    tracker.close()
    assert wait_any(tracker, timeout=0) == []
    thread.spawn(release.cancel).join()
    assert wait_any(tracker) == [tracker]


@concurrency.test(iterations=1)
def test_groups_nest() -> None:
    stop, left, right = CancellationToken(), CancellationToken(), CancellationToken()
    both = AllOf(left, right)
    either = AnyOf(stop, both)
    assert wait_any(either, timeout=0) == []
    left.cancel()
    assert wait_any(either, both, left, timeout=0) == [left]
    right.cancel()
    assert wait_any(either, both, stop, timeout=0) == [either, both]
    assert "AllOf" in repr(either)


@concurrency.test
def test_a_group_wakes_a_parked_caller_when_its_last_member_becomes_ready() -> None:
    tx, rx = sync.channel()
    token = CancellationToken()
    group = AllOf(token, rx)
    canceller = thread.spawn(token.cancel)
    sender = thread.spawn(tx.send, 1)
    assert wait_any(group) == [group]
    canceller.join()
    sender.join()


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="at least one"):
        wait_any()
    with pytest.raises(TypeError, match="cannot be waited on"):
        wait_any(CancellationToken(), "a string")
    with pytest.raises(ValueError, match="wait_any"):
        wait_any(CancellationToken(), timeout=-1)
    with pytest.raises(ValueError, match="at least one"):
        AnyOf()
    with pytest.raises(TypeError, match="cannot be waited on"):
        AllOf(CancellationToken(), 3)


@real_threads_only
def test_a_timeout_returns_an_empty_list_after_about_that_long() -> None:
    _, rx = sync.channel()
    start = time.monotonic()
    assert wait_any(CancellationToken(), rx, timeout=0.1) == []
    elapsed = time.monotonic() - start
    assert 0.06 <= elapsed < 5.0, f"wait_any(timeout=0.1) returned after {elapsed:.3f}s"


@real_threads_only
def test_wakers_are_unregistered_when_wait_any_returns() -> None:
    """The channel hook must not accumulate wakers of finished calls."""
    tx, rx = sync.channel()
    token = CancellationToken()
    for _ in range(50):
        assert wait_any(token, rx, timeout=0.001) == []
    tx.send(1)
    assert wait_any(token, rx) == [rx]
    assert rx._channel.wakers == ()  # type: ignore[attr-defined]
    with token._state.lock() as guard:
        assert guard.value.wakers == []


@real_threads_only
def test_many_producers_and_a_canceller_never_lose_a_wakeup() -> None:
    tx, rx = sync.channel()
    token = CancellationToken()
    senders = [thread.spawn(tx.clone().send, n) for n in range(20)]
    received: list[int] = []
    while len(received) < 20:
        ready = wait_any(token, rx, timeout=30)
        assert ready == [rx], f"wait_any woke with {ready} after {len(received)} messages"
        received.append(rx.recv())
    canceller = thread.spawn(token.cancel)
    assert wait_any(token, timeout=30) == [token]
    assert sorted(received) == list(range(20))
    for handle in [*senders, canceller]:
        handle.join(timeout=10)
