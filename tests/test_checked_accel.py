"""The checked `threading` backend's Mutex, in C (`_fastmutex.CheckedMutex`) and in Python.

Each test runs against both implementations, the pure-Python
`threading.PyMutex` and `threading.Mutex` (the C-accelerated class whenever
the `fast` backend's is), because the two must make the same checks with the
same messages. The C cases skip when the accelerator was not compiled (or
`CONCURRENCY_PURE_PYTHON=1` is set). The objects are built from the backend
classes directly, on real threads, whatever `CONCURRENCY_BACKEND` says; the
facade-level misuse tests are in test_checked_misuse.py.
"""

from __future__ import annotations

import gc
import importlib
import re
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from test_fast_accel import (
    RETAKE_INTERRUPTED_OUTPUT,
    RETAKE_INTERRUPTED_SCRIPT,
    Holder,
    needs_accelerator,
    run_python,
)

from concurrency import PoisonError, sync
from concurrency.backends import fast

# (`from concurrency.backends import threading` could yield the standard library's module.)
checked = importlib.import_module("concurrency.backends.threading")

WAIT = 10.0  # generous bound on any wait that should end almost at once

ACCELERATED_CASE = pytest.param(
    checked.Mutex,
    id="c",
    marks=pytest.mark.skipif(
        not checked.ACCELERATED,
        reason="C accelerator not compiled here, or CONCURRENCY_PURE_PYTHON=1",
    ),
)


@pytest.fixture(params=[pytest.param(checked.PyMutex, id="pure"), ACCELERATED_CASE])
def mutex_class(request: pytest.FixtureRequest) -> Any:
    return request.param


def outcome_in_thread(fn: Callable[[], Any], name: str = "intruder") -> Any:
    """Run `fn` on a new thread called `name`; return its result or the exception it raised."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # handed back to the test to assert on
            box.append(exc)

    t = threading.Thread(target=run, name=name)
    t.start()
    t.join(WAIT)
    assert not t.is_alive() and len(box) == 1
    return box[0]


# --------------------------------------------------------------------------- wiring


def test_checked_classes_are_the_c_ones_with_c_methods() -> None:
    needs_accelerator()
    from concurrency.backends import _fastmutex

    assert checked.ACCELERATED
    m = checked.Mutex(1)
    guard = m.lock()
    try:
        assert isinstance(m, sync.Mutex) and isinstance(m, _fastmutex.CheckedMutex)
        assert isinstance(guard, sync.MutexGuard) and type(guard) is checked.MutexGuard
        # Nothing on the hot path is a Python function: the C bases come first in the MRO.
        for cls, names in (
            (checked.Mutex, ("lock", "try_lock", "try_lock_for")),
            (checked.MutexGuard, ("__enter__", "__exit__", "unlock", "value", "_park", "_unpark")),
        ):
            for name in names:
                owner = next(k for k in cls.__mro__ if name in k.__dict__)
                assert owner.__module__ == "concurrency.backends._fastmutex", (cls, name, owner)
    finally:
        guard.unlock()


def test_facade_builds_the_c_checked_mutex_on_the_threading_backend() -> None:
    needs_accelerator()
    done = run_python(
        """
        import importlib
        from concurrency import sync
        checked = importlib.import_module("concurrency.backends.threading")
        m = sync.Mutex(0)
        print(type(m) is checked.Mutex, checked.ACCELERATED, type(m).__mro__[1].__name__)
        """,
        CONCURRENCY_BACKEND="threading",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "CheckedMutex"]


def test_pure_python_env_var_forces_the_pure_checked_classes() -> None:
    done = run_python(
        """
        import importlib
        from concurrency import sync
        checked = importlib.import_module("concurrency.backends.threading")
        m = sync.Mutex(0)
        print(type(m).__name__, checked.Mutex is checked.PyMutex, checked.ACCELERATED)
        """,
        CONCURRENCY_BACKEND="threading",
        CONCURRENCY_PURE_PYTHON="1",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["PyMutex", "True", "False"]


def test_guard_classes_cannot_be_mixed_between_plain_and_checked() -> None:
    needs_accelerator()
    from concurrency.backends import _fastmutex

    class CheckedWithPlainGuards(_fastmutex.CheckedMutex):
        _guard_class = _fastmutex.MutexGuard

    class PlainWithCheckedGuards(_fastmutex.Mutex):
        _guard_class = _fastmutex.CheckedMutexGuard

    with pytest.raises(TypeError, match=r"_guard_class must be a subclass of .*CheckedMutexGuard"):
        CheckedWithPlainGuards()
    with pytest.raises(TypeError, match=r"_guard_class must not be a .*CheckedMutexGuard"):
        PlainWithCheckedGuards()
    m = _fastmutex.CheckedMutex(3, name="bare")  # the C type alone hands out C checked guards
    with m.lock() as g:
        assert type(g) is _fastmutex.CheckedMutexGuard and g.value == 3


# --------------------------------------------------------------------------- re-locking


def test_relocking_raises_naming_the_lock_and_thread(mutex_class: Any) -> None:
    m = mutex_class(0, name="config")
    with m.lock():
        expected = (
            r"^config is already locked by this thread \(MainThread\); "
            r"locking it again would deadlock$"
        )
        with pytest.raises(RuntimeError, match=expected):
            m.lock()
        with pytest.raises(RuntimeError, match=expected):
            m.try_lock_for(1.0)
        with pytest.raises(RuntimeError, match="would deadlock"):
            m.try_lock_for(-1)  # refused as a re-lock before the timeout is looked at
        assert m.try_lock() is None  # a try cannot deadlock: it finds the lock taken
        assert m.is_locked() and m._owner == threading.get_ident()
    assert not m.is_locked() and m._owner is None
    with m.lock():  # the refused attempts changed nothing
        pass


def test_relocking_check_is_per_thread(mutex_class: Any) -> None:
    m = mutex_class(0)
    with Holder(m) as holder:
        assert m._owner == holder.thread.ident
        assert m.try_lock() is None
        assert m.try_lock_for(0.01) is None  # another thread's hold is waited for, not refused
    with m.lock() as g:
        assert m._owner == threading.get_ident() == g._owner


# --------------------------------------------------------------------------- foreign release


def test_foreign_release_raises_and_the_lock_stays_held(mutex_class: Any) -> None:
    m = mutex_class(0, name="owned")
    guard = m.lock()
    expected = (
        r"^releasing a guard of owned from intruder, but it was acquired by MainThread: "
        r"only the owner may release it$"
    )
    for attempt in (guard.unlock, lambda: guard.__exit__(None, None, None),
                    lambda: guard.__exit__(ValueError, ValueError("x"), None)):
        error = outcome_in_thread(attempt)
        assert isinstance(error, RuntimeError) and re.match(expected, str(error)), error
        assert m.is_locked() and m._owner == threading.get_ident()
        assert not m.is_poisoned(), "a refused exit must not poison"
    guard.value = 1  # still usable by its owner
    guard.unlock()
    assert not m.is_locked() and m._owner is None
    with m.lock() as g:
        assert g.value == 1


def test_owner_that_exited_is_named_by_ident(mutex_class: Any) -> None:
    m = mutex_class(0, name="orphan")
    guard = outcome_in_thread(m.lock, name="short-lived")
    with pytest.raises(RuntimeError) as info:
        guard.unlock()  # (from this thread: an exited thread's ident may be reused)
    assert str(info.value) == (
        f"releasing a guard of orphan from {threading.current_thread().name}, but it was "
        f"acquired by thread {guard._owner}: only the owner may release it"
    )
    assert m.is_locked()


def test_released_guard_refuses_use(mutex_class: Any) -> None:
    m = mutex_class(0)
    with m.lock() as g:
        pass
    for use in (lambda: g.value, lambda: setattr(g, "value", 1), g.unlock,
                lambda: g._mutex_for_wait(None)):
        with pytest.raises(RuntimeError, match="already released"):
            use()
    g.__exit__(None, None, None)  # exiting a released guard is a no-op
    # Also from another thread: a released guard is "released" first, foreign second.
    error = outcome_in_thread(g.unlock)
    assert isinstance(error, RuntimeError) and "already released" in str(error)


# --------------------------------------------------------------------------- poisoning


class Boom(Exception):
    pass


def test_poisoning_keeps_the_owner_right(mutex_class: Any) -> None:
    m = mutex_class(0, name="accounts")
    with pytest.raises(Boom), m.lock():
        raise Boom
    assert m.is_poisoned() and not m.is_locked() and m._owner is None
    for acquire in (m.lock, m.try_lock, lambda: m.try_lock_for(0.01)):
        with pytest.raises(PoisonError):
            acquire()
        assert not m.is_locked() and m._owner is None
    m.clear_poison()
    with m.lock() as g:
        assert g.value == 0 and m._owner == threading.get_ident()


# --------------------------------------------------------------------------- Condvar


def test_condvar_wait_from_a_non_owner_raises(mutex_class: Any) -> None:
    m = mutex_class(0, name="state")
    cv = fast.Condvar(name="changed")
    guard = m.lock()
    error = outcome_in_thread(lambda: cv.wait_timeout(guard, 0.01))
    assert isinstance(error, RuntimeError)
    assert str(error) == (
        "waiting on changed with a guard of state from intruder, but it was acquired by "
        "MainThread: only the owner may release it"
    )
    assert m.is_locked() and m._owner == threading.get_ident()
    assert cv.wait_timeout(guard, 0.01) is True  # the owner may wait
    guard.unlock()
    assert not m.is_locked()


def test_park_and_unpark_keep_the_owner_right(mutex_class: Any) -> None:
    m = mutex_class([])
    cv = fast.Condvar()
    seen: dict[str, Any] = {}
    waiting = threading.Event()

    def waiter() -> None:
        with m.lock() as g:
            waiting.set()
            cv.wait_while(g, lambda items: not items)
            seen["after wait"] = m._owner
            try:
                m.lock()
            except RuntimeError as exc:
                seen["relock"] = str(exc)

    t = threading.Thread(target=waiter, name="waiter")
    t.start()
    assert waiting.wait(WAIT)
    with m.lock() as g:  # only possible once the waiter has parked
        seen["while parked"] = m._owner
        g.value.append("item")
        cv.notify_all()
    t.join(WAIT)
    assert not t.is_alive()
    assert seen["while parked"] == threading.get_ident()
    assert seen["after wait"] == t.ident
    assert "already locked by this thread (waiter)" in seen["relock"]
    assert not m.is_locked() and m._owner is None


def test_parked_guard_keeps_its_owner_and_refuses_foreign_release(mutex_class: Any) -> None:
    m = mutex_class(0)
    g = m.lock()
    g._park()
    assert not m.is_locked() and m._owner is None and g._owner == threading.get_ident()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        g._park()
    g._unpark()
    assert m.is_locked() and m._owner == threading.get_ident()
    error = outcome_in_thread(g.unlock)
    assert isinstance(error, RuntimeError) and "only the owner" in str(error)
    g.unlock()
    assert not m.is_locked()


def test_condvar_wake_on_poisoned_mutex_restores_the_owner(mutex_class: Any) -> None:
    m = mutex_class(0)
    cv = fast.Condvar()
    outcome: list[Any] = []
    waiting = threading.Event()

    def waiter() -> None:
        with m.lock() as g:
            waiting.set()
            try:
                cv.wait(g)
            except PoisonError as exc:  # raised with the guard held again, by this thread
                outcome.append((exc, m._owner == threading.get_ident(), m.is_locked()))

    t = threading.Thread(target=waiter)
    t.start()
    assert waiting.wait(WAIT)
    with pytest.raises(Boom), m.lock():
        cv.notify_all()
        raise Boom
    t.join(WAIT)
    assert len(outcome) == 1
    error, owned_when_raised, locked_when_raised = outcome[0]
    assert isinstance(error, PoisonError) and owned_when_raised and locked_when_raised
    assert not m.is_locked() and m._owner is None


# --------------------------------------------------------------------------- signals, memory


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")
@pytest.mark.parametrize("cls", ["PyMutex", pytest.param("Mutex", id="c")])
def test_interrupted_condvar_retake_leaves_the_guard_released(cls: str) -> None:
    if cls == "Mutex":
        needs_accelerator()
    script = RETAKE_INTERRUPTED_SCRIPT.format(module="threading", cls=cls)
    done = run_python(script, CONCURRENCY_BACKEND="threading")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == RETAKE_INTERRUPTED_OUTPUT


def checked_cycles(m: Any, rounds: int) -> None:
    """Exercise every checked path that creates or drops references, `rounds` times."""
    cv = fast.Condvar()
    for _ in range(rounds):
        with m.lock() as g:
            with pytest.raises(RuntimeError):
                m.lock()
            with pytest.raises(RuntimeError):
                m.try_lock_for(1.0)
            cv.wait_timeout(g, 0)
        g = m.try_lock()
        g.unlock()
        with pytest.raises(Boom), m.lock():
            raise Boom
        with pytest.raises(PoisonError):
            m.lock()
        m.clear_poison()


def test_no_reference_leaks(mutex_class: Any) -> None:
    m = mutex_class(None)
    checked_cycles(m, 50)
    gc.collect()
    before = sys.getrefcount(m)
    checked_cycles(m, 1000)
    gc.collect()
    assert sys.getrefcount(m) == before


def test_no_reference_leaks_on_foreign_release(mutex_class: Any) -> None:
    m = mutex_class(None)
    guard = m.lock()

    def attempts() -> None:
        for _ in range(500):
            with pytest.raises(RuntimeError):
                guard.unlock()
            with pytest.raises(RuntimeError):
                guard.__exit__(None, None, None)
            with pytest.raises(RuntimeError):
                fast.Condvar().wait_timeout(guard, 0)

    outcome_in_thread(attempts)
    gc.collect()
    before = (sys.getrefcount(m), sys.getrefcount(guard))
    outcome_in_thread(attempts)
    gc.collect()
    assert (sys.getrefcount(m), sys.getrefcount(guard)) == before
    guard.unlock()
