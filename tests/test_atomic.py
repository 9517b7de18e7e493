"""`concurrency.sync.atomic`: AtomicInt, AtomicBool, AtomicRef."""

from __future__ import annotations

import threading

import pytest
from sync_helpers import real_threads_only

import concurrency
from concurrency import thread
from concurrency.sync import atomic


@concurrency.test(iterations=1)
def test_defaults() -> None:
    assert atomic.AtomicInt().load() == 0
    assert atomic.AtomicBool().load() is False
    assert atomic.AtomicRef().load() is None


@pytest.mark.parametrize(
    ("cls", "first", "second"),
    [(atomic.AtomicInt, 1, 2), (atomic.AtomicBool, False, True), (atomic.AtomicRef, "a", "b")],
)
@concurrency.test(iterations=1)
def test_load_store_swap(cls: type, first: object, second: object) -> None:
    cell = cls(first)
    assert isinstance(cell, cls)
    assert cell.load() == first
    cell.store(second)
    assert cell.load() == second
    assert cell.swap(first) == second
    assert cell.load() == first


@concurrency.test(iterations=1)
def test_compare_exchange_returns_success_and_current() -> None:
    cell = atomic.AtomicInt(5)
    assert cell.compare_exchange(5, 6) == (True, 5)
    assert cell.load() == 6
    assert cell.compare_exchange(5, 7) == (False, 6)
    assert cell.load() == 6
    flag = atomic.AtomicBool(False)
    assert flag.compare_exchange(False, True) == (True, False)
    assert flag.compare_exchange(False, True) == (False, True)


@concurrency.test(iterations=1)
def test_atomic_ref_compares_by_identity() -> None:
    original = [1, 2]
    equal_copy = [1, 2]
    cell = atomic.AtomicRef(original)
    ok, current = cell.compare_exchange(equal_copy, "new")
    assert not ok
    assert current is original
    ok, current = cell.compare_exchange(original, "new")
    assert ok
    assert current is original
    assert cell.load() == "new"


@concurrency.test(iterations=1)
def test_fetch_add_and_sub_return_the_old_value() -> None:
    cell = atomic.AtomicInt(10)
    assert cell.fetch_add(5) == 10
    assert cell.fetch_sub(3) == 15
    assert cell.fetch_add(-2) == 12
    assert cell.load() == 10


@concurrency.test
def test_concurrent_fetch_add_loses_nothing() -> None:
    counter = atomic.AtomicInt(0)

    def add() -> None:
        for _ in range(3):
            counter.fetch_add(1)

    with thread.scope() as s:
        s.spawn(add)
        s.spawn(add)
    assert counter.load() == 6


@concurrency.test
def test_compare_exchange_loop_increments() -> None:
    counter = atomic.AtomicInt(0)

    def add() -> None:
        for _ in range(2):
            while True:
                seen = counter.load()
                if counter.compare_exchange(seen, seen + 1)[0]:
                    break

    with thread.scope() as s:
        s.spawn(add)
        s.spawn(add)
    assert counter.load() == 4


@concurrency.test
def test_exactly_one_swap_wins() -> None:
    flag = atomic.AtomicBool(False)
    handles = [thread.spawn(flag.swap, True) for _ in range(2)]
    olds = sorted(h.join() for h in handles)
    assert olds == [False, True]
    assert flag.load() is True


@concurrency.test
def test_store_is_visible_to_the_joiner() -> None:
    cell = atomic.AtomicRef(None)
    payload = {"ready": True}
    thread.spawn(cell.store, payload).join()
    assert cell.load() is payload


@real_threads_only
def test_fetch_add_hammer() -> None:
    counter = atomic.AtomicInt(0)

    def add() -> None:
        for _ in range(5000):
            counter.fetch_add(1)
            counter.fetch_sub(1)
            counter.fetch_add(1)

    with thread.scope() as s:
        for _ in range(4):
            s.spawn(add)
    assert counter.load() == 20000


@real_threads_only
@pytest.mark.timeout(120)
def test_store_buffer_litmus_never_sees_both_old_values() -> None:
    """Sequential consistency (review item 6): `x.store(1); y.load()` against
    `y.store(1); x.load()` never gives 0 and 0, also with the GIL disabled."""
    rounds = 3000
    x, y = atomic.AtomicInt(0), atomic.AtomicInt(0)
    start = threading.Barrier(2)
    seen: list[tuple[int, int]] = []
    results = [0, 0]

    def side(index: int, mine: atomic.AtomicInt, other: atomic.AtomicInt) -> None:
        for _ in range(rounds):
            start.wait()
            mine.store(1)
            results[index] = other.load()
            start.wait()
            if index == 0:
                seen.append((results[0], results[1]))
                x.store(0)
                y.store(0)
            start.wait()

    helper = threading.Thread(target=side, args=(1, y, x))
    helper.start()
    side(0, x, y)
    helper.join()
    assert (0, 0) not in seen, f"{seen.count((0, 0))} of {rounds} rounds saw both old values"
