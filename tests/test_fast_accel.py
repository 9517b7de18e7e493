"""The `fast` backend's C-accelerated Mutex (`concurrency/backends/_fastmutex.c`).

Each behaviour test runs against both implementations, the pure-Python
`fast.PyMutex` and the C-accelerated `fast.Mutex`, because the two must be
indistinguishable apart from speed. The C cases skip when the accelerator was
not compiled (or `CONCURRENCY_PURE_PYTHON=1` is set). The objects are built
from the backend classes directly, on real threads, whatever
`CONCURRENCY_BACKEND` says.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from typing import Any

import pytest

from concurrency import PoisonError, sync
from concurrency.backends import fast

WAIT = 10.0  # generous bound on any wait that should end almost at once

ACCELERATED_CASE = pytest.param(
    fast.Mutex,
    id="c",
    marks=pytest.mark.skipif(
        not fast.ACCELERATED,
        reason="C accelerator not compiled here, or CONCURRENCY_PURE_PYTHON=1",
    ),
)


@pytest.fixture(params=[pytest.param(fast.PyMutex, id="pure"), ACCELERATED_CASE])
def mutex_class(request: pytest.FixtureRequest) -> Any:
    return request.param


def needs_accelerator() -> None:
    if not fast.ACCELERATED:
        pytest.skip("C accelerator not compiled here, or CONCURRENCY_PURE_PYTHON=1")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter on the fast backend (unless `env` names
    another), with extra `env`."""
    environ = {k: v for k, v in os.environ.items() if k != "CONCURRENCY_PURE_PYTHON"}
    environ.update({"CONCURRENCY_BACKEND": "fast", **env})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Holder:
    """Holds a mutex on another thread until told to let go."""

    def __init__(self, mutex: Any) -> None:
        self.mutex = mutex
        self.holding = threading.Event()
        self.let_go = threading.Event()
        self.thread = threading.Thread(target=self._run, name="holder")

    def _run(self) -> None:
        guard = self.mutex.lock()
        self.holding.set()
        self.let_go.wait(WAIT)
        guard.unlock()

    def start(self) -> None:
        self.thread.start()
        assert self.holding.wait(WAIT), "the holder thread never got the lock"

    def stop(self) -> None:
        self.let_go.set()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()

    def __enter__(self) -> Holder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- wiring


def test_accelerated_classes_are_facade_subclasses_with_c_methods() -> None:
    needs_accelerator()
    from concurrency.backends import _fastmutex

    m = fast.Mutex(1)
    guard = m.lock()
    try:
        assert isinstance(m, sync.Mutex)
        assert isinstance(m, _fastmutex.Mutex)
        assert isinstance(guard, sync.MutexGuard)
        assert type(guard) is fast.MutexGuard
        # Nothing on the hot path is a Python function: the C base comes first in the MRO.
        for cls, names in (
            (fast.Mutex, ("lock", "try_lock", "try_lock_for")),
            (fast.MutexGuard, ("__enter__", "__exit__", "unlock", "value")),
        ):
            for name in names:
                owner = next(k for k in cls.__mro__ if name in k.__dict__)
                assert owner.__module__ == "concurrency.backends._fastmutex", (cls, name, owner)
    finally:
        guard.unlock()


def test_facade_builds_the_accelerated_mutex_on_the_fast_backend() -> None:
    needs_accelerator()
    done = run_python(
        """
        from concurrency import sync
        from concurrency.backends import fast
        m = sync.Mutex(0)
        print(type(m) is fast.Mutex, fast.ACCELERATED, type(m.lock()).__name__)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "MutexGuard"]


def test_pure_python_env_var_forces_the_pure_classes() -> None:
    done = run_python(
        """
        from concurrency import sync
        from concurrency.backends import fast
        m = sync.Mutex(0)
        with m.lock() as g:
            g.value += 1
        print(type(m).__name__, fast.Mutex is fast.PyMutex, fast.ACCELERATED, m.lock().value)
        """,
        CONCURRENCY_PURE_PYTHON="1",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["PyMutex", "True", "False", "1"]


def test_bad_pure_python_value_fails_import_naming_it() -> None:
    done = run_python("import concurrency", CONCURRENCY_PURE_PYTHON="yes")
    assert done.returncode != 0
    assert "ConfigError" in done.stderr and "CONCURRENCY_PURE_PYTHON='yes'" in done.stderr


def test_checked_backend_builds_on_the_c_checked_classes_when_accelerated() -> None:
    # (`from concurrency.backends import threading` could yield the stdlib module
    # that concurrency.backends itself imports under that name.)
    checked = importlib.import_module("concurrency.backends.threading")

    assert checked.ACCELERATED is fast.ACCELERATED
    if fast.ACCELERATED:
        from concurrency.backends import _fastmutex

        assert issubclass(checked.Mutex, _fastmutex.CheckedMutex)
        assert issubclass(checked.MutexGuard, _fastmutex.CheckedMutexGuard)
    else:
        assert checked.Mutex is checked.PyMutex and issubclass(checked.Mutex, fast.PyMutex)
        assert checked.MutexGuard is checked.PyMutexGuard
    m = checked.Mutex(0)
    with m.lock() as g:
        g.value = 5
    assert m.lock().value == 5


def test_guard_class_must_subclass_the_c_guard() -> None:
    needs_accelerator()

    class Odd(fast.Mutex):
        __slots__ = ()
        _guard_class = int

    with pytest.raises(TypeError, match="_guard_class"):
        Odd()


# --------------------------------------------------------------------------- guards


def test_every_lock_returns_a_fresh_guard(mutex_class: Any) -> None:
    m = mutex_class(0)
    first = m.lock()
    first.unlock()
    second = m.lock()
    assert second is not first
    with pytest.raises(RuntimeError, match="already released"):
        first.unlock()
    assert m.is_locked(), "a stale guard's unlock must not release the new holder"
    second.unlock()
    assert not m.is_locked()


def test_with_returns_the_guard_and_value_reads_and_writes(mutex_class: Any) -> None:
    m = mutex_class([1])
    guard = m.lock()
    with guard as entered:
        assert entered is guard
        entered.value.append(2)
        assert entered.value == [1, 2]
        entered.value = "new"
    with m.lock() as g:
        assert g.value == "new"
    assert not m.is_locked()


def test_released_guard_refuses_use(mutex_class: Any) -> None:
    m = mutex_class(0)
    g = m.lock()
    g.unlock()
    with pytest.raises(RuntimeError, match="already released"):
        g.value  # noqa: B018
    with pytest.raises(RuntimeError, match="already released"):
        g.value = 1
    with pytest.raises(RuntimeError, match="already released"):
        g.unlock()
    g.__exit__(None, None, None)  # exiting a released guard is a no-op
    assert not m.is_locked()


def test_value_cannot_be_deleted(mutex_class: Any) -> None:
    with mutex_class(0).lock() as g, pytest.raises(AttributeError):
        del g.value


def test_early_unlock_inside_with_leaves_another_threads_hold_alone(mutex_class: Any) -> None:
    m = mutex_class(0)
    holder = Holder(m)
    try:
        with m.lock() as g:
            g.unlock()
            holder.start()  # another thread takes the lock inside our block
        # Our block's __exit__ ran: it must not have released the other thread's hold.
        assert m.is_locked()
        assert m.try_lock() is None
    finally:
        holder.stop()
    assert not m.is_locked()


def test_try_lock_and_is_locked(mutex_class: Any) -> None:
    m = mutex_class(0)
    assert not m.is_locked()
    with Holder(m):
        assert m.is_locked()
        assert m.try_lock() is None
    g = m.try_lock()
    assert g is not None and m.is_locked()
    g.unlock()


def test_mutual_exclusion_under_contention(mutex_class: Any) -> None:
    m = mutex_class(0)
    per_thread = 2000

    def work() -> None:
        for _ in range(per_thread):
            with m.lock() as g:
                value = g.value
                g.value = value + 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert m.lock().value == 4 * per_thread


# --------------------------------------------------------------------------- timeouts


def test_try_lock_for_validates_its_timeout(mutex_class: Any) -> None:
    m = mutex_class(0)
    with pytest.raises(ValueError, match=r"Mutex\.try_lock_for"):
        m.try_lock_for(-1)
    with pytest.raises(ValueError, match=r"Mutex\.try_lock_for"):
        m.try_lock_for(float("nan"))
    with pytest.raises(TypeError, match=r"Mutex\.try_lock_for"):
        m.try_lock_for(None)
    with pytest.raises(TypeError, match=r"Mutex\.try_lock_for"):
        m.try_lock_for(True)
    with pytest.raises(TypeError, match=r"Mutex\.try_lock_for"):
        m.try_lock_for("1")
    guard = m.try_lock_for(1e300)  # capped to MAX_TIMEOUT: "as long as needed", not an overflow
    assert guard is not None
    guard.unlock()
    assert not m.is_locked()


def test_try_lock_for_times_out_then_succeeds(mutex_class: Any) -> None:
    m = mutex_class("v")
    with Holder(m):
        assert m.try_lock_for(0) is None
        start = time.monotonic()
        assert m.try_lock_for(0.2) is None
        elapsed = time.monotonic() - start
        assert 0.12 <= elapsed < 10, elapsed
    g = m.try_lock_for(0)
    assert g is not None and g.value == "v"
    g.unlock()


def test_try_lock_for_gets_the_lock_when_released_during_the_wait(mutex_class: Any) -> None:
    m = mutex_class(0)
    holder = Holder(m)
    holder.start()
    threading.Timer(0.1, holder.let_go.set).start()
    g = m.try_lock_for(WAIT)
    holder.stop()
    assert g is not None
    g.unlock()


# --------------------------------------------------------------------------- poisoning


class Boom(Exception):
    pass


def poison(m: Any, exc: BaseException) -> None:
    with pytest.raises(type(exc)), m.lock():
        raise exc


def test_exception_in_with_poisons_and_acquires_raise(mutex_class: Any) -> None:
    m = mutex_class(0, name="accounts")
    original = Boom("first")
    poison(m, original)
    assert m.is_poisoned() and not m.is_locked()
    assert repr(m) == "<Mutex accounts unlocked, poisoned>"
    for acquire in (m.lock, m.try_lock, lambda: m.try_lock_for(0.01)):
        with pytest.raises(PoisonError) as info:
            acquire()
        assert info.value.original is original and info.value.__cause__ is original
        assert info.value.lock == "accounts"
        assert not m.is_locked(), "a poisoned acquire must give the lock back"
    m.clear_poison()
    assert not m.is_poisoned()
    with m.lock() as g:
        assert g.value == 0


def test_first_poison_wins(mutex_class: Any) -> None:
    m = mutex_class(0)
    first, second = Boom("first"), Boom("second")
    guard = m.lock()
    m._poison = first  # poisoned while this guard is held (as a Condvar waiter can be)
    with pytest.raises(Boom), guard:
        raise second
    assert m._poison is first
    assert not m.is_locked()


def test_exception_after_early_unlock_does_not_poison(mutex_class: Any) -> None:
    m = mutex_class(0)
    with pytest.raises(Boom), m.lock() as g:
        g.unlock()
        raise Boom
    assert not m.is_poisoned()


def test_base_exceptions_poison_too(mutex_class: Any) -> None:
    m = mutex_class(0)
    poison(m, KeyboardInterrupt())
    assert m.is_poisoned()


# --------------------------------------------------------------------------- names, repr


def test_names(mutex_class: Any) -> None:
    auto = mutex_class()
    assert auto.name.startswith("Mutex#")
    assert mutex_class(name="").name.startswith("Mutex#")
    named = mutex_class(3, name="jobs")
    assert named.name == "jobs"
    assert repr(named) == "<Mutex jobs unlocked>"
    with named.lock():
        assert repr(named) == "<Mutex jobs locked>"
    named.name = "renamed"
    assert repr(named) == "<Mutex renamed unlocked>"


def test_constructor_arguments(mutex_class: Any) -> None:
    assert mutex_class().lock().value is None
    assert mutex_class(value=7).lock().value == 7
    with pytest.raises(TypeError):
        mutex_class(1, "positional name")


# --------------------------------------------------------------------------- Condvar


def test_condvar_wait_and_notify(mutex_class: Any) -> None:
    m = mutex_class([])
    cv = fast.Condvar()
    got: list[Any] = []

    def consumer() -> None:
        with m.lock() as g:
            cv.wait_while(g, lambda items: not items)
            got.append(g.value.pop())

    t = threading.Thread(target=consumer)
    t.start()
    time.sleep(0.05)
    with m.lock() as g:
        g.value.append("item")
        cv.notify_all()
    t.join(WAIT)
    assert got == ["item"]
    assert not m.is_locked()


def test_condvar_timeout_keeps_the_guard_held(mutex_class: Any) -> None:
    m = mutex_class(0)
    cv = fast.Condvar()
    with m.lock() as g:
        assert cv.wait_timeout(g, 0.05) is True
        assert m.is_locked()
        g.value = 1
    assert not m.is_locked()


def test_condvar_wake_on_poisoned_mutex_raises_with_guard_held(mutex_class: Any) -> None:
    m = mutex_class(0)
    cv = fast.Condvar()
    outcome: list[Any] = []
    waiting = threading.Event()

    def waiter() -> None:
        try:
            with m.lock() as g:
                waiting.set()
                cv.wait(g)
                outcome.append("woke normally")
        except PoisonError as exc:
            outcome.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    assert waiting.wait(WAIT)
    original = Boom("while the waiter slept")
    with pytest.raises(Boom), m.lock():  # the waiter has parked: we can take the lock
        cv.notify_all()
        raise original
    t.join(WAIT)
    assert len(outcome) == 1 and isinstance(outcome[0], PoisonError)
    assert outcome[0].original is original
    assert m._poison is original, "the first poison wins over the PoisonError that followed"
    assert not m.is_locked(), "the waiter's with-block released the re-taken lock"


def test_condvar_refuses_released_guard(mutex_class: Any) -> None:
    m = mutex_class(0)
    g = m.lock()
    g.unlock()
    with pytest.raises(RuntimeError, match="already released"):
        fast.Condvar().wait_timeout(g, 0.01)


def test_parking_twice_is_refused(mutex_class: Any) -> None:
    m = mutex_class(0)
    g = m.lock()
    g._park()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        g._park()
    g._unpark()
    g.unlock()
    assert not m.is_locked()


# --------------------------------------------------------------------------- signals


SIGNAL_SCRIPT = """
import signal, threading, time
from concurrency.backends import fast

m = fast.{cls}(0)
holding, let_go = threading.Event(), threading.Event()

def hold():
    g = m.lock()
    holding.set()
    let_go.wait(30)
    g.unlock()

class Interrupted(Exception):
    pass

def raising(signum, frame):
    raise Interrupted

calls = []
signal.signal(signal.SIGUSR1, raising)
t = threading.Thread(target=hold)
t.start()
holding.wait(30)
threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGUSR1)).start()
try:
    m.lock()
    print("lock returned")
except Interrupted:
    print("lock interrupted", m.is_locked())

# A handler that returns: the wait goes on, for the rest of its timeout only.
signal.signal(signal.SIGUSR1, lambda *a: calls.append(1))
threading.Timer(0.1, signal.pthread_kill, (threading.main_thread().ident, signal.SIGUSR1)).start()
start = time.monotonic()
timed = m.try_lock_for(0.6)
elapsed = time.monotonic() - start
print("timed", timed, len(calls), 0.4 <= elapsed < 10)

threading.Timer(0.1, signal.pthread_kill, (threading.main_thread().ident, signal.SIGUSR1)).start()
threading.Timer(0.4, let_go.set).start()
g = m.lock()
print("acquired", len(calls), g.value)
g.unlock()
t.join()
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")
@pytest.mark.parametrize("cls", ["PyMutex", pytest.param("Mutex", id="c")])
def test_blocking_acquire_is_interruptible_by_signals(cls: str) -> None:
    if cls == "Mutex":
        needs_accelerator()
    done = run_python(SIGNAL_SCRIPT.format(cls=cls))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "lock interrupted True",
        "timed None 1 True",
        "acquired 2 0",
    ]


# A Condvar waiter is notified, then blocks taking the mutex back while another
# thread holds it; SIGINT arrives and KeyboardInterrupt ends that wait. The
# waiter's guard must let go of the mutex: its `with` exit must neither release
# the other thread's hold nor poison the mutex. Shared with test_checked_accel.py.
RETAKE_INTERRUPTED_SCRIPT = """
import importlib, linecache, signal, sys, threading, time
from concurrency.backends._realthread import Condvar

backend = importlib.import_module("concurrency.backends.{module}")
m = backend.{cls}(0, name="m")
cv = Condvar()
main = threading.main_thread().ident
main_done = threading.Event()

def retaking():
    # Whether the main thread is inside `guard._unpark()` in Condvar._wait.
    frame = sys._current_frames().get(main)
    while frame is not None:
        line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
        if frame.f_code.co_name == "_wait" and line == "guard._unpark()":
            return True
        frame = frame.f_back
    return False

def notifier():
    g = m.lock()  # only possible once the main thread has parked in its wait
    cv.notify_all()
    deadline = time.monotonic() + 30
    while not retaking() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let it reach the blocking acquire
    signal.pthread_kill(main, signal.SIGINT)
    main_done.wait(30)
    print("other still holds", m.is_locked(), getattr(m, "_owner", me()) == me())
    g.unlock()
    print("other released", m.is_locked())

def me():
    return threading.get_ident()

t = threading.Thread(target=notifier)
try:
    with m.lock() as g:
        t.start()
        cv.wait(g)
    print("wait returned")
except KeyboardInterrupt:
    try:
        g.value
    except RuntimeError as exc:
        print("guard released", "already released" in str(exc))
    print("poisoned", m.is_poisoned())
main_done.set()
t.join(30)
with m.lock() as g:
    print("relocked", g.value)
"""

RETAKE_INTERRUPTED_OUTPUT = [
    "guard released True",
    "poisoned False",
    "other still holds True True",
    "other released False",
    "relocked 0",
]


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill")
@pytest.mark.parametrize("cls", ["PyMutex", pytest.param("Mutex", id="c")])
def test_interrupted_condvar_retake_leaves_the_guard_released(cls: str) -> None:
    if cls == "Mutex":
        needs_accelerator()
    done = run_python(RETAKE_INTERRUPTED_SCRIPT.format(module="fast", cls=cls))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == RETAKE_INTERRUPTED_OUTPUT


# --------------------------------------------------------------------------- memory


def lock_cycles(m: Any, value: object, rounds: int) -> None:
    """Exercise every path that creates or drops references, `rounds` times."""
    cv = fast.Condvar()
    for _ in range(rounds):
        with m.lock() as g:
            g.value = value
            assert g.value is value
        g = m.try_lock()
        g.unlock()
        with m.try_lock_for(1.0) as g:
            cv.wait_timeout(g, 0)
        repr(m)
        m.name = m.name
        with pytest.raises(ValueError):
            m.try_lock_for(-1)
        with pytest.raises(Boom), m.lock():
            raise Boom
        with pytest.raises(PoisonError):
            m.lock()
        m.clear_poison()


def test_no_reference_leaks(mutex_class: Any) -> None:
    m = mutex_class(None)
    value = object()
    lock_cycles(m, value, 100)  # warm caches (imports, interned strings)
    gc.collect()
    before = (sys.getrefcount(m), sys.getrefcount(value))
    lock_cycles(m, value, 2000)
    gc.collect()
    assert (sys.getrefcount(m), sys.getrefcount(value)) == before


def test_no_memory_growth(mutex_class: Any) -> None:
    m = mutex_class(0)
    value = object()
    lock_cycles(m, value, 200)
    gc.collect()
    tracemalloc.start()
    try:
        lock_cycles(m, value, 200)
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        lock_cycles(m, value, 3000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes retained over 3000 lock cycles"


def test_cycle_through_a_held_guard_is_collected(mutex_class: Any) -> None:
    freed = threading.Event()

    class Sentinel:
        def __del__(self) -> None:
            freed.set()

    m = mutex_class(None)
    g = m.lock()
    g.value = [g, Sentinel()]  # mutex -> value -> guard -> mutex
    del m, g
    gc.collect()
    assert freed.is_set()
