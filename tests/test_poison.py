"""Poison-as-panic, exactly as the contract states it.

An exception escaping a `with` block that holds a `MutexGuard`, `WriteGuard`
or `UpgradableReadGuard` poisons the lock; every later acquire raises
`PoisonError` (a `Panic`, so `except Exception` does not swallow it) naming the
lock and the original exception, until `clear_poison()`. Readers never poison.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sync_helpers import JOIN_TIMEOUT

import concurrency
from concurrency import sync, thread


class Boom(Exception):
    """The exception our crashing critical sections raise."""


def crash_holding(acquire: Callable[[], Any], *, write: bool = True) -> None:
    """Enter a `with` block on the guard from `acquire`; leave "torn" in it if `write`,
    then let an exception escape the block."""
    with pytest.raises(Boom), acquire() as guard:
        if write:
            guard.value = "torn"
        raise Boom("half-way")


def assert_poison_error(err: BaseException, lock_name: str, original_type: type) -> None:
    """The PoisonError names the lock and the original exception, chained as __cause__."""
    assert isinstance(err, sync.PoisonError)
    assert err.lock == lock_name
    assert isinstance(err.original, original_type)
    assert err.__cause__ is err.original
    assert lock_name in str(err)
    assert original_type.__name__ in str(err)


# --------------------------------------------------------------------------- the hierarchy


def test_panic_is_not_an_exception() -> None:
    assert issubclass(concurrency.Panic, BaseException)
    assert not issubclass(concurrency.Panic, Exception)
    assert issubclass(sync.PoisonError, concurrency.Panic)
    assert sync.PoisonError is concurrency.PoisonError
    assert sync.Panic is concurrency.Panic


@concurrency.test(iterations=1)
def test_except_exception_does_not_swallow_poison() -> None:
    m = sync.Mutex(0, name="ledger")
    crash_holding(m.lock)
    swallowed = False
    with pytest.raises(sync.PoisonError):
        try:
            m.lock()
        except Exception:
            swallowed = True
    assert not swallowed


# --------------------------------------------------------------------------- Mutex


@concurrency.test(iterations=1)
def test_mutex_poisoned_by_escaping_exception() -> None:
    m = sync.Mutex(0, name="ledger")
    assert not m.is_poisoned()
    with pytest.raises(Boom), m.lock():
        raise Boom("mid-transfer")
    assert m.is_poisoned()
    assert not m.is_locked()
    with pytest.raises(sync.PoisonError) as info:
        m.lock()
    assert_poison_error(info.value, "ledger", Boom)
    assert "mid-transfer" in str(info.value)


@pytest.mark.parametrize("attempt", ["lock", "try_lock", "try_lock_for"])
@concurrency.test(iterations=1)
def test_every_mutex_acquire_raises_when_poisoned(attempt: str) -> None:
    m = sync.Mutex(0, name="ledger")
    crash_holding(m.lock)
    call = {"lock": m.lock, "try_lock": m.try_lock, "try_lock_for": lambda: m.try_lock_for(0.01)}
    for _ in range(2):  # a failed acquire leaves it poisoned and unlocked
        with pytest.raises(sync.PoisonError) as info:
            call[attempt]()
        assert_poison_error(info.value, "ledger", Boom)
        assert not m.is_locked()


@concurrency.test(iterations=1)
def test_clear_poison_is_the_way_back() -> None:
    m = sync.Mutex(0)
    crash_holding(m.lock)
    m.clear_poison()
    assert not m.is_poisoned()
    with m.lock() as guard:
        assert guard.value == "torn"  # whatever the crashed holder left
        guard.value = 1
    assert not m.is_poisoned()


@concurrency.test(iterations=1)
def test_first_exception_is_the_one_reported() -> None:
    """A PoisonError escaping a second lock's block poisons that lock in turn."""
    inner = sync.Mutex(0, name="inner")
    outer = sync.Mutex(0, name="outer")
    crash_holding(inner.lock)
    with pytest.raises(sync.PoisonError), outer.lock():
        inner.lock()
    with pytest.raises(sync.PoisonError) as info:
        outer.lock()
    assert_poison_error(info.value, "outer", sync.PoisonError)
    assert info.value.original.lock == "inner"  # type: ignore[attr-defined]


@concurrency.test(iterations=1)
def test_unlocked_guard_does_not_poison() -> None:
    m = sync.Mutex(0)
    with pytest.raises(Boom), m.lock() as guard:
        guard.unlock()
        raise Boom
    assert not m.is_poisoned()


@concurrency.test
def test_thread_crash_poisons_for_everyone() -> None:
    m = sync.Mutex(0, name="shared")

    def crash() -> None:
        with m.lock() as guard:
            guard.value = 1
            raise Boom("worker died")

    handle = thread.spawn(crash)
    with pytest.raises(Boom):
        handle.join()
    with pytest.raises(sync.PoisonError) as info:
        thread.spawn(m.lock).join()
    assert_poison_error(info.value, "shared", Boom)


@concurrency.test
def test_condvar_waiter_sees_poison_from_the_notifier() -> None:
    """A waiter re-acquiring a mutex poisoned while it slept raises PoisonError."""
    m = sync.Mutex(False, name="flag")
    cv = sync.Condvar()

    def waiter() -> None:
        with m.lock() as guard:
            cv.wait_while(guard, lambda ready: not ready)

    handle = thread.spawn(waiter)
    with pytest.raises(Boom), m.lock() as guard:
        guard.value = True
        cv.notify_all()
        raise Boom
    with pytest.raises(sync.PoisonError):
        handle.join()
    assert not m.is_locked()


# --------------------------------------------------------------------------- RwLock


@pytest.mark.parametrize("kind", ["write", "upgradable_read", "upgraded", "try_write"])
@concurrency.test(iterations=1)
def test_rwlock_poisoned_by_writers_and_upgradables(kind: str) -> None:
    rw = sync.RwLock(0, name="table")
    acquire = {
        "write": rw.write,
        "upgradable_read": rw.upgradable_read,
        "upgraded": lambda: rw.upgradable_read().upgrade(),
        "try_write": rw.try_write,
    }[kind]
    crash_holding(acquire, write=kind != "upgradable_read")
    assert rw.is_poisoned()
    with pytest.raises(sync.PoisonError) as info:
        rw.read()
    assert_poison_error(info.value, "table", Boom)


@concurrency.test(iterations=1)
def test_read_guard_never_poisons() -> None:
    rw = sync.RwLock(0)
    crash_holding(rw.read, write=False)
    assert not rw.is_poisoned()
    crash_holding(lambda: rw.write().downgrade(), write=False)
    assert not rw.is_poisoned()
    with rw.write() as guard:
        guard.value = 1


@pytest.mark.parametrize(
    "attempt",
    [
        "read",
        "write",
        "upgradable_read",
        "try_read",
        "try_write",
        "try_upgradable_read",
        "try_read_for",
        "try_write_for",
    ],
)
@concurrency.test(iterations=1)
def test_every_rwlock_acquire_raises_when_poisoned(attempt: str) -> None:
    rw = sync.RwLock(0, name="table")
    crash_holding(rw.write)
    method = getattr(rw, attempt)
    args = (0.01,) if attempt.endswith("_for") else ()
    for _ in range(2):
        with pytest.raises(sync.PoisonError) as info:
            method(*args)
        assert_poison_error(info.value, "table", Boom)
    rw.clear_poison()
    guard = rw.try_write()  # the failed acquires left nothing held
    assert guard is not None
    guard.unlock()


@concurrency.test(iterations=1)
def test_rwlock_clear_poison() -> None:
    rw = sync.RwLock(0)
    crash_holding(rw.write)
    rw.clear_poison()
    assert not rw.is_poisoned()
    with rw.read() as guard:
        assert guard.value == "torn"
    with rw.write() as guard:
        guard.value = 2


@concurrency.test
def test_waiting_readers_and_writers_all_see_poison() -> None:
    """Every thread queued behind a crashing writer raises; none is left parked."""
    rw = sync.RwLock(0, name="table")

    def attempt(method: str) -> str:
        try:
            getattr(rw, method)().unlock()
        except sync.PoisonError:
            return "poisoned"
        return "acquired"

    with pytest.raises(Boom), rw.write():
        handles = [thread.spawn(attempt, m) for m in ("read", "write", "upgradable_read")]
        raise Boom
    assert [h.join(JOIN_TIMEOUT) for h in handles] == ["poisoned"] * 3
