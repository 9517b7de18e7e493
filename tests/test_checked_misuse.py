"""Misuse the checked `threading` backend turns into a clear `RuntimeError`.

Each of these would hang or corrupt state with a plain lock. The checks the
`fast` backend also makes (they cost nothing on its hot path) run on both
real-thread backends; the rest only on `threading`.
"""

from __future__ import annotations

import pytest
from sync_helpers import JOIN_TIMEOUT

import concurrency
from concurrency import sync, thread

CHECKED = ("threading",)
BOTH_REAL = ("threading", "fast")


def in_thread(fn: object, *args: object) -> object:
    """Run `fn(*args)` on another thread and return (or raise) its outcome."""
    return thread.spawn(fn, *args).join(JOIN_TIMEOUT)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- re-locking


@concurrency.test(backends=CHECKED, iterations=1)
def test_relocking_a_held_mutex_raises_instead_of_deadlocking() -> None:
    m = sync.Mutex(0, name="config")
    with m.lock():
        with pytest.raises(RuntimeError, match="config is already locked by this thread"):
            m.lock()
        with pytest.raises(RuntimeError, match="would deadlock"):
            m.try_lock_for(1.0)
        assert m.is_locked()
    with m.lock():  # the refused attempts changed nothing
        pass


@pytest.mark.parametrize(
    ("held", "asked"),
    [("read", "read"), ("read", "write"), ("write", "read"), ("write", "write"),
     ("upgradable_read", "read"), ("upgradable_read", "upgradable_read")],
)
@concurrency.test(backends=CHECKED, iterations=1)
def test_reacquiring_a_held_rwlock_raises(held: str, asked: str) -> None:
    rw = sync.RwLock(0, name="index")
    with getattr(rw, held)(), pytest.raises(RuntimeError, match=r"index: .* already holds"):
        getattr(rw, asked)()
    with rw.write():
        pass


@pytest.mark.parametrize(
    ("held", "readable", "upgradable"),
    [("read", True, True), ("write", False, False), ("upgradable_read", True, False)],
)
@concurrency.test(backends=CHECKED, iterations=1)
def test_try_acquire_by_the_holder_reports_the_state(
    held: str, readable: bool, upgradable: bool
) -> None:
    """A try_* cannot deadlock, so the checked backend answers it from the lock's state."""
    rw = sync.RwLock(0)
    with getattr(rw, held)():
        assert rw.try_write() is None
        second = rw.try_upgradable_read()
        assert (second is not None) == upgradable
        if second is not None:
            second.unlock()
        reader = rw.try_read()
        assert (reader is not None) == readable
        if reader is not None:
            reader.unlock()
    m = sync.Mutex(0)
    with m.lock():
        assert m.try_lock() is None


# --------------------------------------------------------------------------- released guards


@pytest.mark.parametrize("kind", ["mutex", "read", "write", "upgradable_read"])
@concurrency.test(backends=BOTH_REAL, iterations=1)
def test_using_a_released_guard_raises(kind: str) -> None:
    guard = sync.Mutex(1).lock() if kind == "mutex" else getattr(sync.RwLock(1), kind)()
    guard.unlock()
    with pytest.raises(RuntimeError, match="already released"):
        _ = guard.value
    if kind in ("mutex", "write"):
        with pytest.raises(RuntimeError, match="already released"):
            guard.value = 2
    with pytest.raises(RuntimeError, match="already released"):
        guard.unlock()


@concurrency.test(backends=BOTH_REAL, iterations=1)
def test_guard_kept_after_with_cannot_be_used() -> None:
    m = sync.Mutex([1])
    with m.lock() as guard:
        pass
    with pytest.raises(RuntimeError, match="already released"):
        guard.value.append(2)


# --------------------------------------------------------------------------- foreign release


@pytest.mark.parametrize("kind", ["mutex", "read", "write", "upgradable_read"])
@concurrency.test(backends=CHECKED, iterations=1)
def test_releasing_from_another_thread_raises(kind: str) -> None:
    lock: sync.Mutex[int] | sync.RwLock[int]
    if kind == "mutex":
        lock = sync.Mutex(0, name="owned")
        guard = lock.lock()
    else:
        lock = sync.RwLock(0, name="owned")
        guard = getattr(lock, kind)()
    with pytest.raises(RuntimeError, match=r"owned .*only the owner may release it"):
        in_thread(guard.unlock)
    with pytest.raises(RuntimeError, match="only the owner may release it"):
        in_thread(guard.__exit__, None, None, None)
    guard.unlock()  # the owner still can, and the lock is free again
    reacquire = lock.lock if isinstance(lock, sync.Mutex) else lock.write
    with reacquire():
        pass


@concurrency.test(backends=CHECKED, iterations=1)
def test_waiting_on_a_condvar_with_a_foreign_guard_raises() -> None:
    m = sync.Mutex(0, name="state")
    cv = sync.Condvar(name="changed")
    guard = m.lock()
    with pytest.raises(RuntimeError, match=r"changed .*only the owner"):
        in_thread(cv.wait_timeout, guard, 0.01)
    guard.unlock()


# --------------------------------------------------------------------------- Condvar pairing


@concurrency.test(backends=BOTH_REAL, iterations=1)
def test_condvar_with_two_mutexes_raises() -> None:
    first = sync.Mutex(0, name="first")
    second = sync.Mutex(0, name="second")
    cv = sync.Condvar(name="cv")
    with first.lock() as guard:
        assert cv.wait_timeout(guard, 0.0) in (True, False)
    with second.lock() as guard, pytest.raises(RuntimeError, match="same Mutex") as info:
        cv.wait_timeout(guard, 0.0)
    assert "first" in str(info.value)
    assert "second" in str(info.value)
    assert not second.is_locked()
    with first.lock() as guard:  # the original pairing still works
        assert cv.wait_timeout_while(guard, 0.0, lambda v: True) is True


# --------------------------------------------------------------------------- other hangs


@concurrency.test(backends=BOTH_REAL, iterations=1)
def test_once_lock_reentrant_initializer_raises() -> None:
    cell = sync.OnceLock(name="settings")

    def init() -> int:
        return cell.get_or_init(lambda: 1)

    with pytest.raises(RuntimeError, match=r"settings\.get_or_init.* from inside its own initializer"):
        cell.get_or_init(init)
    assert cell.get() is None
    assert cell.get_or_init(lambda: 2) == 2
