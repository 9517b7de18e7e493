"""`channel()` and `sync_channel(bound)`: FIFO delivery, disconnects, iteration.

Nothing sent is lost or duplicated; `recv` on an empty channel whose senders
all closed raises `Disconnected`, `send` to a closed receiver raises
`Disconnected`, `try_recv` on an empty open channel raises `Empty`, and a
timed-out `recv_timeout` raises `TimeoutError`.
"""

from __future__ import annotations

import math
import time
from collections import Counter

import pytest
from sync_helpers import JOIN_TIMEOUT, assert_took, real_threads_only, settle

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic

BOUNDS = [None, 1, 3]  # unbounded and bounded; rendezvous (0) has its own tests


def make(bound: int | None) -> tuple[sync.Sender[object], sync.Receiver[object]]:
    return sync.channel() if bound is None else sync.sync_channel(bound)


# --------------------------------------------------------------------------- one thread


@pytest.mark.parametrize("bound", BOUNDS)
@concurrency.test(iterations=1)
def test_fifo_order(bound: int | None) -> None:
    tx, rx = make(bound)
    assert isinstance(tx, sync.Sender)
    assert isinstance(rx, sync.Receiver)
    count = bound or 3
    for i in range(count):
        tx.send(i)
    assert [rx.recv() for _ in range(count)] == list(range(count))


@pytest.mark.parametrize("bound", BOUNDS)
@concurrency.test(iterations=1)
def test_empty_timeout_and_disconnected(bound: int | None) -> None:
    tx, rx = make(bound)
    with pytest.raises(sync.Empty):
        rx.try_recv()
    with pytest.raises(TimeoutError):
        rx.recv_timeout(0.01)
    tx.send("last")
    tx.close()
    assert rx.try_recv() == "last"  # nothing sent before close is lost
    with pytest.raises(sync.Disconnected):
        rx.try_recv()
    with pytest.raises(sync.Disconnected):
        rx.recv()
    with pytest.raises(sync.Disconnected):
        rx.recv_timeout(0.01)


@pytest.mark.parametrize("bound", BOUNDS)
@concurrency.test(iterations=1)
def test_disconnect_waits_for_every_clone(bound: int | None) -> None:
    tx, rx = make(bound)
    tx2 = tx.clone()
    assert isinstance(tx2, sync.Sender)
    tx.close()
    tx.close()  # idempotent
    with pytest.raises(sync.Empty):
        rx.try_recv()  # tx2 is still open
    tx2.send("from clone")
    tx2.close()
    assert rx.recv() == "from clone"
    with pytest.raises(sync.Disconnected):
        rx.recv()


@concurrency.test(iterations=1)
def test_closed_sender_refuses_to_send_or_clone() -> None:
    tx, _rx = sync.channel()
    tx.close()
    with pytest.raises(sync.Disconnected):
        tx.send(1)
    with pytest.raises(sync.Disconnected):
        tx.clone()


@pytest.mark.parametrize("bound", [*BOUNDS, 0])
@concurrency.test(iterations=1)
def test_send_to_a_closed_receiver_raises(bound: int | None) -> None:
    tx, rx = make(bound)
    rx.close()
    rx.close()  # idempotent
    with pytest.raises(sync.Disconnected):
        tx.send("nobody listens")
    with pytest.raises(sync.Disconnected):
        rx.recv()


@pytest.mark.parametrize("bound", BOUNDS)
@concurrency.test(iterations=1)
def test_iteration_drains_until_disconnected(bound: int | None) -> None:
    tx, rx = make(bound)
    items = list(range(bound or 4))
    for item in items:
        tx.send(item)
    tx.close()
    assert list(rx) == items
    assert list(rx) == []


@concurrency.test(iterations=1)
def test_context_managers_close_both_ends() -> None:
    tx, rx = sync.channel()
    with tx as sender:
        assert sender is tx
        sender.send("a")
    assert list(rx) == ["a"]  # the with block closed the only sender

    tx, rx = sync.channel()
    with rx as receiver:
        assert receiver is rx
    with pytest.raises(sync.Disconnected):
        tx.send("b")


@concurrency.test(iterations=1)
def test_rendezvous_has_no_buffer() -> None:
    tx, rx = sync.sync_channel(0)
    with pytest.raises(sync.Empty):
        rx.try_recv()
    with pytest.raises(TimeoutError):
        rx.recv_timeout(0.01)
    tx.close()
    with pytest.raises(sync.Disconnected):
        rx.recv()


@pytest.mark.parametrize(("bound", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
@concurrency.test(iterations=1)
def test_sync_channel_validates_bound(bound: object, error: type) -> None:
    with pytest.raises(error, match="bound"):
        sync.sync_channel(bound)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, math.nan])
@concurrency.test(iterations=1)
def test_recv_timeout_validates(bad: float) -> None:
    _tx, rx = sync.channel()
    with pytest.raises(ValueError, match="recv_timeout"):
        rx.recv_timeout(bad)
    with pytest.raises(TypeError, match="recv_timeout"):
        rx.recv_timeout(None)  # type: ignore[arg-type]


@concurrency.test(iterations=1)
def test_channel_names() -> None:
    tx, rx = sync.channel(name="jobs")
    rx.close()
    with pytest.raises(sync.Disconnected, match="jobs"):
        tx.send(1)


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize("bound", [None, 1, 0])
@concurrency.test
def test_two_producers_nothing_lost_or_duplicated(bound: int | None) -> None:
    tx, rx = make(bound)

    def produce(tag: str, sender: sync.Sender[object]) -> None:
        with sender:
            for i in range(2):
                sender.send((tag, i))

    a = thread.spawn(produce, "a", tx.clone())
    b = thread.spawn(produce, "b", tx)
    received = list(rx)
    a.join(JOIN_TIMEOUT)
    b.join(JOIN_TIMEOUT)
    assert Counter(received) == Counter([("a", 0), ("a", 1), ("b", 0), ("b", 1)])
    for tag in "ab":  # each sender's messages stay in order
        assert [i for t, i in received if t == tag] == [0, 1]


@concurrency.test
def test_bounded_send_blocks_when_full() -> None:
    tx, rx = sync.sync_channel(1)
    tx.send(1)
    sent_second = atomic.AtomicBool(False)

    def send_second() -> None:
        tx.send(2)
        sent_second.store(True)

    handle = thread.spawn(send_second)
    assert rx.recv() == 1
    assert rx.recv() == 2
    handle.join(JOIN_TIMEOUT)
    assert sent_second.load()


@concurrency.test
def test_rendezvous_send_returns_after_the_receive() -> None:
    tx, rx = sync.sync_channel(0)
    delivered = atomic.AtomicBool(False)

    def send() -> None:
        tx.send("hand-off")
        delivered.store(True)

    handle = thread.spawn(send)
    assert not delivered.load()  # nobody has received yet, so send cannot have returned
    assert rx.recv() == "hand-off"
    handle.join(JOIN_TIMEOUT)
    assert delivered.load()


@concurrency.test
def test_closing_the_last_sender_wakes_a_blocked_receiver() -> None:
    tx, rx = sync.channel()

    def receive() -> str:
        try:
            rx.recv()
        except sync.Disconnected:
            return "disconnected"
        return "got a message"

    handle = thread.spawn(receive)
    tx.close()
    assert handle.join(JOIN_TIMEOUT) == "disconnected"


@pytest.mark.parametrize("bound", [0, 1])
@concurrency.test
def test_closing_the_receiver_wakes_a_blocked_sender(bound: int) -> None:
    tx, rx = sync.sync_channel(bound)
    for i in range(bound):
        tx.send(i)  # fill the buffer

    def send() -> str:
        try:
            tx.send("blocked")
        except sync.Disconnected:
            return "disconnected"
        return "sent"

    handle = thread.spawn(send)
    rx.close()
    assert handle.join(JOIN_TIMEOUT) == "disconnected"


@concurrency.test
def test_iteration_across_threads() -> None:
    tx, rx = sync.sync_channel(1)

    def produce() -> None:
        with tx:
            for i in range(3):
                tx.send(i)

    handle = thread.spawn(produce)
    assert list(rx) == [0, 1, 2]
    handle.join(JOIN_TIMEOUT)


# --------------------------------------------------------------------------- real time


@real_threads_only
def test_recv_timeout_within_tolerance() -> None:
    _tx, rx = sync.channel()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        rx.recv_timeout(0.2)
    assert_took(time.monotonic() - start, 0.2)


@real_threads_only
def test_recv_timeout_gets_a_late_message() -> None:
    tx, rx = sync.channel()

    def late() -> None:
        time.sleep(0.05)
        tx.send("late")

    handle = thread.spawn(late)
    assert rx.recv_timeout(10) == "late"
    handle.join(10)


@real_threads_only
def test_bounded_sender_really_blocks() -> None:
    tx, rx = sync.sync_channel(2)
    sent = atomic.AtomicInt(0)

    def produce() -> None:
        for i in range(5):
            tx.send(i)
            sent.fetch_add(1)

    handle = thread.spawn(produce)
    settle(2)
    assert sent.load() == 2  # the third send waits for room
    assert [rx.recv() for _ in range(5)] == [0, 1, 2, 3, 4]
    handle.join(10)


@real_threads_only
@pytest.mark.parametrize("bound", [None, 0, 8])
def test_many_producers_many_messages(bound: int | None) -> None:
    """No message lost or duplicated under load, per-producer order kept."""
    producers, per_producer = 4, 2000 if bound != 0 else 300
    tx, rx = make(bound)

    def produce(tag: int, sender: sync.Sender[object]) -> None:
        with sender:
            for i in range(per_producer):
                sender.send((tag, i))

    handles = [thread.spawn(produce, p, tx.clone()) for p in range(producers)]
    tx.close()
    last = dict.fromkeys(range(producers), -1)
    count = 0
    for tag, i in rx:
        assert i == last[tag] + 1, f"producer {tag}: got {i} after {last[tag]}"
        last[tag] = i
        count += 1
    for handle in handles:
        handle.join(10)
    assert count == producers * per_producer
