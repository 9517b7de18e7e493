"""Model behaviours a review found wrong, each checked against what real threads can do."""

from __future__ import annotations

import pytest

import concurrency
from concurrency import sync, thread


def _outcomes(body_with_log: object) -> set[object]:
    seen: list[object] = []
    report = concurrency.check(lambda: body_with_log(seen), "dfs")  # type: ignore[operator]
    assert report.exhausted
    return set(seen)


def test_a_thread_without_operations_can_be_seen_running() -> None:
    def body(seen: list[object]) -> None:
        handle = thread.spawn(lambda: 42)
        seen.append(handle.is_finished())
        handle.join()

    assert _outcomes(body) == {False, True}


def test_join_with_a_zero_timeout_may_time_out_on_a_thread_without_operations() -> None:
    def body(seen: list[object]) -> None:
        handle = thread.spawn(lambda: 42)
        try:
            seen.append(handle.join(timeout=0))
        except TimeoutError:
            seen.append("timeout")
            handle.join()

    assert _outcomes(body) == {42, "timeout"}


def test_one_yield_does_not_force_a_pending_timeout() -> None:
    def body(seen: list[object]) -> None:
        tx, rx = sync.channel()

        def receiver() -> object:
            try:
                return rx.recv_timeout(1.0)
            except TimeoutError:
                return "timeout"

        handle = thread.spawn(receiver)
        thread.yield_now()
        tx.send(1)
        seen.append(handle.join())

    assert _outcomes(body) == {1, "timeout"}


def test_a_spin_loop_waiting_for_a_sleeper_ends() -> None:
    def body() -> None:
        flag = sync.Mutex(False)

        def sleeper() -> None:
            thread.sleep(1.0)
            with flag.lock() as guard:
                guard.value = True

        handle = thread.spawn(sleeper)
        while True:
            with flag.lock() as guard:
                if guard.value:
                    break
            thread.yield_now()
        handle.join()

    for strategy in ("dfs", "pct", "random"):
        concurrency.check(body, strategy, iterations=200)


def test_send_on_a_closed_sender_raises_even_when_the_channel_is_full() -> None:
    def body() -> None:
        tx, rx = sync.sync_channel(1)
        keep = tx.clone()
        tx.send(1)
        tx.close()
        with pytest.raises(sync.Disconnected, match="closed Sender"):
            tx.send(2)
        keep.close()
        rx.close()

    concurrency.check(body, "dfs")
