"""The real-thread primitives in pairs: the native core against the pure-Python fallback.

The native core (`concurrency.backends.native`, C) and the pure-Python classes
(`concurrency.backends.pure`) must be indistinguishable apart from speed, so
each behaviour test runs against four implementations:

- `pure`: `pure.Mutex` & co. (what `fast` binds without the native core);
- `pure-checked`: `pure.CheckedMutex` & co. (what `threading` binds without it);
- `native`, `native-checked`: `native.bind(checked=False/True)`.

The native cases skip when the core is not compiled, or when
`CONCURRENCY_PURE_PYTHON=1` is set (`native.CORE is None`). The objects are
built from the backend classes directly, on real threads, whatever
`CONCURRENCY_BACKEND` says; the facade-level tests (`tests/test_mutex.py`,
`test_rwlock.py`, ...) run on whichever backend is selected.
"""

from __future__ import annotations

import gc
import importlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from concurrency import PoisonError, sync
from concurrency._errors import ConfigError
from concurrency.backends import fast, native, pure

# (`from concurrency.backends import threading` could yield the stdlib module
# that concurrency.backends itself imports under that name.)
checked_backend = importlib.import_module("concurrency.backends.threading")

WAIT = 10.0  # generous bound on any wait that should end almost at once
NO_CORE = "native core not compiled here, or CONCURRENCY_PURE_PYTHON=1"
needs_core = pytest.mark.skipif(native.CORE is None, reason=NO_CORE)
needs_pthread_kill = pytest.mark.skipif(
    not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill"
)


# --------------------------------------------------------------------------- the pairs


def _pure_classes(checked: bool) -> SimpleNamespace:
    return SimpleNamespace(
        Mutex=pure.CheckedMutex if checked else pure.Mutex,
        RwLock=pure.CheckedRwLock if checked else pure.RwLock,
        Semaphore=pure.CheckedSemaphore if checked else pure.Semaphore,
        Condvar=pure.Condvar, Barrier=pure.Barrier, OnceLock=pure.OnceLock,
        AtomicInt=pure.AtomicInt, AtomicBool=pure.AtomicBool, AtomicRef=pure.AtomicRef,
        channel=pure.channel,
    )


def _implementation(kind: str, checked: bool) -> SimpleNamespace | None:
    if kind == "native":
        if native.CORE is None:
            return None
        classes = native.bind(checked=checked)
    else:
        classes = _pure_classes(checked)
    classes.checked, classes.native = checked, kind == "native"
    return classes


def _param(kind: str, checked: bool) -> Any:
    marks = [needs_core] if kind == "native" else []
    label = kind + ("-checked" if checked else "")
    return pytest.param(_implementation(kind, checked), id=label, marks=marks)


ALL = [_param(kind, checked) for kind in ("pure", "native") for checked in (False, True)]
CHECKED = [_param(kind, True) for kind in ("pure", "native")]


@pytest.fixture(params=ALL)
def impl(request: pytest.FixtureRequest) -> SimpleNamespace:
    """One implementation's classes (`checked`, `native` say which)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=CHECKED)
def checked_impl(request: pytest.FixtureRequest) -> SimpleNamespace:
    """One checked implementation's classes (the `threading` backend's)."""
    return request.param  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- helpers


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter on the fast backend (unless `env` names
    another) with the native core (unless `env` sets CONCURRENCY_PURE_PYTHON)."""
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


def locked_value(m: Any) -> Any:
    with m.lock() as g:
        return g.value


class Boom(Exception):
    pass


class ResourceWarnings:
    """The messages of the ResourceWarnings emitted so far, read as a list."""

    def __init__(self, caught: list[warnings.WarningMessage]) -> None:
        self.caught = caught

    def messages(self) -> list[str]:
        return [str(w.message) for w in self.caught if issubclass(w.category, ResourceWarning)]

    def __len__(self) -> int:
        return len(self.messages())

    def __getitem__(self, index: int) -> str:
        return self.messages()[index]

    def __eq__(self, other: object) -> bool:
        return self.messages() == other


@pytest.fixture
def resource_warnings() -> Iterator[ResourceWarnings]:
    """The ResourceWarnings emitted during the test (recorded, not shown)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield ResourceWarnings(caught)


def here() -> str:
    """"file:line" of the caller, as a dropped-guard warning names it."""
    frame = sys._getframe(1)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


# --------------------------------------------------------------------------- wiring


@needs_core
@pytest.mark.parametrize("checked", [False, True], ids=["native", "native-checked"])
def test_native_classes_are_facade_subclasses_with_c_methods(checked: bool) -> None:
    core = native.CORE
    assert core is not None
    ns = native.bind(checked=checked)
    hot = {
        "Mutex": (sync.Mutex, ("lock", "try_lock", "try_lock_for", "is_locked")),
        "MutexGuard": (sync.MutexGuard, ("__enter__", "__exit__", "unlock", "value")),
        "Condvar": (sync.Condvar, ("wait", "wait_timeout", "notify_one", "notify_all")),
        "RwLock": (sync.RwLock, ("read", "write", "upgradable_read", "try_read", "try_write")),
        "ReadGuard": (sync.ReadGuard, ("__enter__", "__exit__", "unlock", "value")),
        "WriteGuard": (sync.WriteGuard, ("__enter__", "__exit__", "unlock", "value", "downgrade")),
        "UpgradableReadGuard": (sync.UpgradableReadGuard, ("__enter__", "__exit__", "upgrade")),
        "Semaphore": (sync.Semaphore, ("acquire", "try_acquire", "available")),
        "SemaphoreGuard": (sync.SemaphoreGuard, ("__enter__", "__exit__", "unlock")),
    }
    for name, (facade, methods) in hot.items():
        cls = getattr(ns, name)
        assert cls.__name__ == name and issubclass(cls, facade)
        assert cls.__mro__[1] is getattr(core, name), "the C type must come first in the MRO"
        for method in methods:
            owner = next(k for k in cls.__mro__ if method in k.__dict__)
            assert owner.__module__ == core.__name__, (name, method, owner)
    for name in ("Mutex", "RwLock", "Semaphore"):
        assert getattr(ns, name)._checked_ is checked
    m = ns.Mutex(1)
    with m.lock() as g:
        assert type(g) is ns.MutexGuard and isinstance(g, sync.MutexGuard)


def test_backends_bind_the_native_classes_when_compiled() -> None:
    assert fast.NATIVE is checked_backend.NATIVE is (native.CORE is not None)
    if fast.NATIVE:
        assert issubclass(fast.Mutex, native.CORE.Mutex) and not fast.Mutex._checked_
        assert issubclass(checked_backend.Mutex, native.CORE.Mutex) and checked_backend.Mutex._checked_
        assert checked_backend.RwLock._checked_ and checked_backend.Semaphore._checked_
    else:
        assert fast.Mutex is pure.Mutex and fast.RwLock is pure.RwLock
        assert checked_backend.Mutex is pure.CheckedMutex
        assert checked_backend.RwLock is pure.CheckedRwLock
        assert checked_backend.Semaphore is pure.CheckedSemaphore
    for backend in (fast, checked_backend):
        m = backend.Mutex(0)
        with m.lock() as g:
            g.value = 5
        assert locked_value(m) == 5


@needs_core
def test_facade_builds_the_native_mutex_on_the_fast_backend() -> None:
    done = run_python(
        """
        from concurrency import sync
        from concurrency.backends import fast, native
        m = sync.Mutex(0)
        with m.lock() as g:
            print(type(m) is fast.Mutex, fast.NATIVE, isinstance(m, native.CORE.Mutex),
                  m._checked_, type(g).__name__)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "False", "MutexGuard"]


@needs_core
def test_facade_builds_the_checked_native_mutex_on_the_threading_backend() -> None:
    done = run_python(
        """
        import importlib
        from concurrency import sync
        from concurrency.backends import native
        checked = importlib.import_module("concurrency.backends.threading")
        m = sync.Mutex(0)
        print(type(m) is checked.Mutex, checked.NATIVE, isinstance(m, native.CORE.Mutex), m._checked_)
        with m.lock():
            try:
                m.lock()
            except RuntimeError as exc:
                print("would deadlock" in str(exc))
        """,
        CONCURRENCY_BACKEND="threading",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "True", "True"]


@pytest.mark.parametrize(("backend", "expected"), [("fast", "Mutex"), ("threading", "CheckedMutex")])
def test_pure_python_env_var_forces_the_pure_classes(backend: str, expected: str) -> None:
    done = run_python(
        """
        import importlib, os
        from concurrency import sync
        from concurrency.backends import native, pure
        selected = importlib.import_module("concurrency.backends." + os.environ["CONCURRENCY_BACKEND"])
        m = sync.Mutex(0)
        with m.lock() as g:
            g.value += 1
        with m.lock() as g:
            print(type(m).__name__, type(m) is getattr(pure, type(m).__name__), selected.NATIVE,
                  native.CORE is None, g.value)
        """,
        CONCURRENCY_BACKEND=backend,
        CONCURRENCY_PURE_PYTHON="1",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [expected, "True", "False", "True", "1"]


def test_bad_pure_python_value_fails_the_import_naming_it() -> None:
    done = run_python("import concurrency", CONCURRENCY_PURE_PYTHON="yes")
    assert done.returncode != 0
    assert "ConfigError" in done.stderr and "CONCURRENCY_PURE_PYTHON='yes'" in done.stderr
    assert "pure_python_forced" in done.stderr, "the traceback names the check"


def test_pure_python_forced_reads_only_0_1_or_unset() -> None:
    for raw, forced in (("", False), ("0", False), ("1", True), (" 1 ", True)):
        assert native.pure_python_forced({"CONCURRENCY_PURE_PYTHON": raw}) is forced
    assert native.pure_python_forced({}) is False
    for raw in ("yes", "true", "2", "on"):
        with pytest.raises(ConfigError, match=re.escape(f"CONCURRENCY_PURE_PYTHON={raw!r}")):
            native.pure_python_forced({"CONCURRENCY_PURE_PYTHON": raw})


@needs_core
def test_guard_class_must_subclass_the_native_guard() -> None:
    core = native.CORE
    assert core is not None

    class Odd(fast.Mutex if fast.NATIVE else native.bind(checked=False).Mutex):
        __slots__ = ()
        _guard_class = int

    class PureGuards(core.Mutex):
        _guard_class = pure.MutexGuard

    class OddPermits(core.Semaphore):
        _guard_class = pure.SemaphoreGuard

    for cls, args in ((Odd, ()), (PureGuards, ()), (OddPermits, (1,))):
        with pytest.raises(TypeError, match=r"_guard_class must be a subclass of .*_core\."):
            cls(*args)


@needs_core
def test_checkedness_comes_from_the_checked_class_attribute() -> None:
    core = native.CORE
    assert core is not None

    class Guard(core.MutexGuard):
        pass

    class Plain(core.Mutex):
        _guard_class = Guard

    class Checked(Plain):
        _checked_ = True

    plain, checked = Plain(3, name="plain"), Checked(3, name="checked")
    guard = plain.lock()
    assert type(guard) is Guard and guard.value == 3
    assert outcome_in_thread(guard.unlock) is None, "unchecked: any thread may release"
    assert not plain.is_locked()

    guard = checked.lock()
    assert type(guard) is Guard and checked._owner == threading.get_ident()
    with pytest.raises(RuntimeError, match="would deadlock"):
        checked.lock()
    error = outcome_in_thread(guard.unlock)
    assert isinstance(error, RuntimeError) and "only the owner" in str(error)
    guard.unlock()
    assert not checked.is_locked()


# --------------------------------------------------------------------------- guards


def test_every_lock_returns_a_fresh_guard(impl: Any) -> None:
    m = impl.Mutex(0)
    first = m.lock()
    first.unlock()
    second = m.lock()
    assert second is not first
    with pytest.raises(RuntimeError, match="already released"):
        first.unlock()
    assert m.is_locked(), "a stale guard's unlock must not release the new holder"
    second.unlock()
    assert not m.is_locked()


def test_with_returns_the_guard_and_value_reads_and_writes(impl: Any) -> None:
    m = impl.Mutex([1])
    guard = m.lock()
    with guard as entered:
        assert entered is guard
        entered.value.append(2)
        assert entered.value == [1, 2]
        entered.value = "new"
    assert locked_value(m) == "new"
    assert not m.is_locked()


def test_released_guard_refuses_use(impl: Any) -> None:
    m = impl.Mutex(0)
    with m.lock() as g:
        pass
    cv = impl.Condvar()
    for use in (lambda: g.value, lambda: setattr(g, "value", 1), g.unlock,
                lambda: cv.wait_timeout(g, 0.01)):
        with pytest.raises(RuntimeError, match="already released"):
            use()
    g.__exit__(None, None, None)  # exiting a released guard is a no-op
    # Also from another thread: a released guard is "released" first, foreign second.
    error = outcome_in_thread(g.unlock)
    assert isinstance(error, RuntimeError) and "already released" in str(error)
    assert not m.is_locked()


def test_value_cannot_be_deleted(impl: Any) -> None:
    with impl.Mutex(0).lock() as g, pytest.raises(AttributeError):
        del g.value


def test_early_unlock_inside_with_leaves_another_threads_hold_alone(impl: Any) -> None:
    m = impl.Mutex(0)
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


def test_try_lock_and_is_locked(impl: Any) -> None:
    m = impl.Mutex(0)
    assert not m.is_locked()
    with Holder(m):
        assert m.is_locked()
        assert m.try_lock() is None
    g = m.try_lock()
    assert g is not None and m.is_locked()
    g.unlock()


def test_mutual_exclusion_under_contention(impl: Any) -> None:
    m = impl.Mutex(0)
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
    assert locked_value(m) == 4 * per_thread


# --------------------------------------------------------------------------- dropped guards


def test_dropped_mutex_guard_releases_and_warns_when_checked(
    impl: Any, resource_warnings: ResourceWarnings
) -> None:
    m = impl.Mutex(0, name="dropped")
    g = m.lock(); site = here()  # noqa: E702  # the warning names this line
    del g
    assert not m.is_locked() and not m.is_poisoned()
    assert getattr(m, "_owner", None) is None
    assert locked_value(m) == 0
    if impl.checked:
        assert len(resource_warnings) == 1
        message = resource_warnings[0]
        assert message.startswith(f"a guard of dropped acquired at {site} was dropped while held")
    else:
        assert resource_warnings == []


def test_dropped_guard_wakes_a_waiting_thread(impl: Any, resource_warnings: ResourceWarnings) -> None:
    m = impl.Mutex("v")
    g = m.lock()
    waiting = threading.Event()

    def wait_for_it() -> Any:
        waiting.set()
        got = m.try_lock_for(WAIT)
        value = got.value if got is not None else None
        if got is not None:
            got.unlock()
        return value

    box: list[Any] = []
    t = threading.Thread(target=lambda: box.append(wait_for_it()))
    t.start()
    assert waiting.wait(WAIT)
    time.sleep(0.05)  # let it park
    del g
    t.join(WAIT)
    assert box == ["v"] and not m.is_locked()
    assert len(resource_warnings) == (1 if impl.checked else 0)


def _acquirer(impl: Any, kind: str) -> tuple[Callable[[], Any], Callable[[], bool], str]:
    """(how to take a guard of `kind`, whether its lock is free again, its name in the warning)."""
    if kind == "permit":
        s = impl.Semaphore(1, name="pool")
        return s.acquire, lambda: s.available() == 1, "a permit of pool"
    rw = impl.RwLock(0, name="table")

    def free() -> bool:
        guard = rw.try_write()
        if guard is None:
            return False
        guard.unlock()
        return not rw.is_poisoned()

    acquire = {"read": rw.read, "write": rw.write, "upgradable": rw.upgradable_read}[kind]
    label = {"read": "ReadGuard", "write": "WriteGuard", "upgradable": "UpgradableReadGuard"}[kind]
    return acquire, free, f"a {label} of table"


@pytest.mark.parametrize("kind", ["read", "write", "upgradable", "permit"])
def test_dropped_rwlock_and_semaphore_guards_release_and_warn_when_checked(
    impl: Any, kind: str, resource_warnings: ResourceWarnings
) -> None:
    acquire, free, label = _acquirer(impl, kind)
    g = acquire(); site = here()  # noqa: E702  # the warning names this line
    assert not free()
    del g
    assert free()
    if impl.checked:
        assert len(resource_warnings) == 1
        assert resource_warnings[0].startswith(f"{label} acquired at {site} was dropped while held")
    else:
        assert resource_warnings == []


def test_held_guard_in_a_reference_cycle_is_released_when_collected(
    impl: Any, resource_warnings: ResourceWarnings
) -> None:
    m = impl.Mutex(0)
    box: list[Any] = [m.lock()]
    box.append(box)  # the guard is only reachable from a cycle
    del box
    assert m.is_locked()
    gc.collect()
    assert not m.is_locked() and not m.is_poisoned()
    assert len(resource_warnings) == (1 if impl.checked else 0)


def test_cycle_through_a_held_guard_is_collected(impl: Any, resource_warnings: ResourceWarnings) -> None:
    freed = threading.Event()

    class Sentinel:
        def __del__(self) -> None:
            freed.set()

    m = impl.Mutex(None)
    g = m.lock()
    g.value = [g, Sentinel()]  # mutex -> value -> guard -> mutex
    del m, g
    gc.collect()
    assert freed.is_set()


# --------------------------------------------------------------------------- timeouts


def test_try_lock_for_validates_its_timeout(impl: Any) -> None:
    m = impl.Mutex(0)
    with pytest.raises(ValueError, match=r"Mutex\.try_lock_for"):
        m.try_lock_for(-1)
    with pytest.raises(ValueError, match=r"Mutex\.try_lock_for"):
        m.try_lock_for(float("nan"))
    for bad in (None, True, "1"):
        with pytest.raises(TypeError, match=r"Mutex\.try_lock_for"):
            m.try_lock_for(bad)
    guard = m.try_lock_for(1e300)  # capped to MAX_TIMEOUT: "as long as needed", not an overflow
    assert guard is not None
    guard.unlock()
    assert not m.is_locked()


def test_try_lock_for_times_out_then_succeeds(impl: Any) -> None:
    m = impl.Mutex("v")
    with Holder(m):
        assert m.try_lock_for(0) is None
        start = time.monotonic()
        assert m.try_lock_for(0.2) is None
        elapsed = time.monotonic() - start
        assert 0.12 <= elapsed < 10, elapsed
    g = m.try_lock_for(0)
    assert g is not None and g.value == "v"
    g.unlock()


def test_try_lock_for_gets_the_lock_when_released_during_the_wait(impl: Any) -> None:
    m = impl.Mutex(0)
    holder = Holder(m)
    holder.start()
    timer = threading.Timer(0.1, holder.let_go.set)
    timer.start()
    g = m.try_lock_for(WAIT)
    holder.stop()
    timer.join(WAIT)
    assert g is not None
    g.unlock()


# --------------------------------------------------------------------------- poisoning


def poison(m: Any, exc: BaseException) -> None:
    with pytest.raises(type(exc)), m.lock():
        raise exc


def test_exception_in_with_poisons_and_acquires_raise(impl: Any) -> None:
    m = impl.Mutex(0, name="accounts")
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
        assert getattr(m, "_owner", None) is None
    m.clear_poison()
    assert not m.is_poisoned()
    with m.lock() as g:
        assert g.value == 0
        if impl.checked:
            assert m._owner == threading.get_ident()


def test_exception_after_early_unlock_does_not_poison(impl: Any) -> None:
    m = impl.Mutex(0)
    with pytest.raises(Boom), m.lock() as g:
        g.unlock()
        raise Boom
    assert not m.is_poisoned()


def test_base_exceptions_poison_too(impl: Any) -> None:
    m = impl.Mutex(0)
    poison(m, KeyboardInterrupt())
    assert m.is_poisoned()


# --------------------------------------------------------------------------- names, repr


def test_names(impl: Any) -> None:
    auto = impl.Mutex()
    assert auto.name.startswith("Mutex#")
    assert impl.Mutex(name="").name.startswith("Mutex#")
    named = impl.Mutex(3, name="jobs")
    assert named.name == "jobs"
    assert repr(named) == "<Mutex jobs unlocked>"
    with named.lock():
        assert repr(named) == "<Mutex jobs locked>"
    named.name = "renamed"
    assert repr(named) == "<Mutex renamed unlocked>"


def test_constructor_arguments(impl: Any) -> None:
    assert locked_value(impl.Mutex()) is None
    assert locked_value(impl.Mutex(value=7)) == 7
    with pytest.raises(TypeError):
        impl.Mutex(1, "positional name")


# --------------------------------------------------------------------------- Condvar


def test_condvar_wait_and_notify(impl: Any) -> None:
    m = impl.Mutex([])
    cv = impl.Condvar()
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


def test_condvar_timeout_keeps_the_guard_held(impl: Any) -> None:
    m = impl.Mutex(0)
    cv = impl.Condvar()
    with m.lock() as g:
        assert cv.wait_timeout(g, 0.05) is True
        assert m.is_locked()
        g.value = 1
    assert not m.is_locked()


def test_condvar_wake_on_poisoned_mutex_raises_with_guard_held(impl: Any) -> None:
    m = impl.Mutex(0)
    cv = impl.Condvar()
    outcome: list[Any] = []
    waiting = threading.Event()

    def waiter() -> None:
        try:
            with m.lock() as g:
                waiting.set()
                try:
                    cv.wait(g)
                    outcome.append("woke normally")
                except PoisonError as exc:  # raised with the guard held again, by this thread
                    outcome.append((exc, m.is_locked(), getattr(m, "_owner", None)))
                    raise Boom("second") from exc  # leaves the with: the first poison wins
        except Boom:
            pass

    t = threading.Thread(target=waiter)
    t.start()
    assert waiting.wait(WAIT)
    original = Boom("while the waiter slept")
    with pytest.raises(Boom), m.lock():  # the waiter has parked: we can take the lock
        cv.notify_all()
        raise original
    t.join(WAIT)
    assert len(outcome) == 1 and isinstance(outcome[0], tuple)
    error, locked_when_raised, owner_when_raised = outcome[0]
    assert isinstance(error, PoisonError) and error.original is original
    assert locked_when_raised
    if impl.checked:
        assert owner_when_raised == t.ident
    assert m._poison is original, "the first poison wins over the exceptions that followed"
    assert not m.is_locked(), "the waiter's with-block released the re-taken lock"
    assert getattr(m, "_owner", None) is None


RETAKE_INTERRUPTED_SCRIPT = """
import importlib, signal, sys, threading, time

backend = importlib.import_module("concurrency.backends." + sys.argv[1])
m = backend.Mutex(0, name="m")
cv = backend.Condvar()
main = threading.main_thread().ident
interrupted = threading.Event()

def notifier():
    g = m.lock()  # only possible once the main thread has parked in its wait
    cv.notify_all()
    time.sleep(0.3)  # the main thread is now blocked taking the mutex back
    signal.pthread_kill(main, signal.SIGINT)
    time.sleep(0.3)
    print("still waiting", not interrupted.is_set())
    g.unlock()

t = threading.Thread(target=notifier)
with m.lock() as g:
    t.start()
    try:
        cv.wait(g)
        print("wait returned")
    except KeyboardInterrupt:
        interrupted.set()
        owner = getattr(m, "_owner", None)
        print("interrupted holding", m.is_locked(), g.value, owner in (None, main))
        g.value = 1
t.join(30)
print("poisoned", m.is_poisoned(), "locked", m.is_locked())
with m.lock() as g:
    print("relocked", g.value)
"""


@needs_pthread_kill
@pytest.mark.parametrize("backend", ["fast", "threading"])
@pytest.mark.parametrize("kind", ["pure", pytest.param("native", marks=needs_core)])
def test_interrupted_condvar_retake_comes_back_holding_the_mutex(backend: str, kind: str) -> None:
    # SIGINT arrives while a notified waiter blocks taking the mutex back from
    # another thread: the KeyboardInterrupt is raised only once the mutex is
    # held again, so the waiter's `with` block still owns it.
    env = {"CONCURRENCY_PURE_PYTHON": "1"} if kind == "pure" else {}
    done = subprocess.run(
        [sys.executable, "-c", RETAKE_INTERRUPTED_SCRIPT, backend],
        env={**{k: v for k, v in os.environ.items() if k != "CONCURRENCY_PURE_PYTHON"},
             "CONCURRENCY_BACKEND": backend, **env},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "still waiting True",
        "interrupted holding True 0 True",
        "poisoned False locked False",
        "relocked 1",
    ]


# --------------------------------------------------------------------------- signals


SIGNAL_SCRIPT = """
import importlib, signal, sys, threading, time

backend = importlib.import_module("concurrency.backends." + sys.argv[1])
m = backend.Mutex(0)
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

def kill_main_after(delay):
    threading.Timer(delay, signal.pthread_kill, (threading.main_thread().ident, signal.SIGUSR1)).start()

calls = []
signal.signal(signal.SIGUSR1, raising)
t = threading.Thread(target=hold)
t.start()
holding.wait(30)
kill_main_after(0.2)
try:
    m.lock()
    print("lock returned")
except Interrupted:
    print("lock interrupted", m.is_locked())

# A handler that returns: the wait goes on, for the rest of its timeout only.
signal.signal(signal.SIGUSR1, lambda *a: calls.append(1))
kill_main_after(0.1)
start = time.monotonic()
timed = m.try_lock_for(0.6)
elapsed = time.monotonic() - start
print("timed", timed, len(calls), 0.4 <= elapsed < 10)

kill_main_after(0.1)
threading.Timer(0.4, let_go.set).start()
g = m.lock()
print("acquired", len(calls), g.value)
g.unlock()
t.join()
"""


@needs_pthread_kill
@pytest.mark.parametrize("backend", ["fast", "threading"])
@pytest.mark.parametrize("kind", ["pure", pytest.param("native", marks=needs_core)])
def test_blocking_acquire_is_interruptible_by_signals(backend: str, kind: str) -> None:
    env = {"CONCURRENCY_PURE_PYTHON": "1"} if kind == "pure" else {}
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_SCRIPT, backend],
        env={**{k: v for k, v in os.environ.items() if k != "CONCURRENCY_PURE_PYTHON"},
             "CONCURRENCY_BACKEND": backend, **env},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "lock interrupted True",
        "timed None 1 True",
        "acquired 2 0",
    ]


# --------------------------------------------------------------------------- checked: re-locking


def test_relocking_raises_naming_the_lock_and_thread(checked_impl: Any) -> None:
    m = checked_impl.Mutex(0, name="config")
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


def test_relocking_check_is_per_thread(checked_impl: Any) -> None:
    m = checked_impl.Mutex(0)
    with Holder(m) as holder:
        assert m._owner == holder.thread.ident
        assert m.try_lock() is None
        assert m.try_lock_for(0.01) is None  # another thread's hold is waited for, not refused
    with m.lock() as g:
        assert m._owner == threading.get_ident() == g._owner


# --------------------------------------------------------------------------- checked: foreign release


def test_foreign_release_raises_and_the_lock_stays_held(checked_impl: Any) -> None:
    m = checked_impl.Mutex(0, name="owned")
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
    assert locked_value(m) == 1


def test_owner_that_exited_is_named_by_ident(
    checked_impl: Any, resource_warnings: ResourceWarnings
) -> None:
    m = checked_impl.Mutex(0, name="orphan")
    guard = outcome_in_thread(m.lock, name="short-lived")
    with pytest.raises(RuntimeError) as info:
        guard.unlock()  # (from this thread: an exited thread's ident may be reused)
    assert str(info.value) == (
        f"releasing a guard of orphan from {threading.current_thread().name}, but it was "
        f"acquired by thread {guard._owner}: only the owner may release it"
    )
    assert m.is_locked()
    del guard, info  # nobody may release it now: dropping it does (`info` kept it alive)
    assert not m.is_locked() and len(resource_warnings) == 1


def test_condvar_wait_from_a_non_owner_raises(checked_impl: Any) -> None:
    m = checked_impl.Mutex(0, name="state")
    cv = checked_impl.Condvar(name="changed")
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


def test_condvar_wait_keeps_the_owner_right(checked_impl: Any) -> None:
    m = checked_impl.Mutex([])
    cv = checked_impl.Condvar()
    seen: dict[str, Any] = {}
    waiting = threading.Event()
    parked_guard: list[Any] = []

    def waiter() -> None:
        with m.lock() as g:
            parked_guard.append(g)
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
        try:  # a parked guard still belongs to its thread
            parked_guard[0].unlock()
        except RuntimeError as exc:
            seen["foreign release"] = str(exc)
        g.value.append("item")
        cv.notify_all()
    t.join(WAIT)
    assert not t.is_alive()
    assert seen["while parked"] == threading.get_ident()
    assert "only the owner may release it" in seen["foreign release"]
    assert seen["after wait"] == t.ident
    assert "already locked by this thread (waiter)" in seen["relock"]
    assert not m.is_locked() and m._owner is None


# --------------------------------------------------------------------------- memory


def lock_cycles(impl: Any, m: Any, value: object, rounds: int) -> None:
    """Exercise every Mutex path that creates or drops references, `rounds` times."""
    cv = impl.Condvar()
    for _ in range(rounds):
        with m.lock() as g:
            g.value = value
            assert g.value is value
            if impl.checked:
                with pytest.raises(RuntimeError):
                    m.lock()
        g = m.try_lock()
        g.unlock()
        with m.try_lock_for(1.0) as g:
            cv.wait_timeout(g, 0)
        cv.notify_all()
        repr(m)
        m.name = m.name
        with pytest.raises(ValueError):
            m.try_lock_for(-1)
        with pytest.raises(Boom), m.lock():
            raise Boom
        with pytest.raises(PoisonError):
            m.lock()
        m.clear_poison()


def family_cycles(impl: Any, value: object, rounds: int) -> None:
    """Each other family's basic operations, on fresh objects, `rounds` times."""
    for _ in range(rounds):
        rw = impl.RwLock(value, name="rw")
        with rw.read() as r:
            assert r.value is value
        with rw.write() as w:
            w.value = value
        u = rw.upgradable_read()
        w = u.upgrade()
        w.downgrade().unlock()
        rw.try_read().unlock()
        rw.try_write().unlock()
        rw.try_upgradable_read().unlock()
        rw.try_read_for(1.0).unlock()
        rw.try_write_for(1.0).unlock()
        with pytest.raises(Boom), rw.write():
            raise Boom
        with pytest.raises(PoisonError):
            rw.read()
        rw.clear_poison()

        s = impl.Semaphore(2, name="s")
        with s.acquire():
            s.try_acquire().unlock()
        s.try_acquire_for(1.0).unlock()
        assert s.available() == 2

        impl.Barrier(1, name="b").wait()
        once = impl.OnceLock(name="once")
        assert once.get_or_init(lambda: value) is value and once.get() is value

        n = impl.AtomicInt(1)
        n.fetch_add(2)
        n.fetch_sub(1)
        n.compare_exchange(2, 5)
        n.store(n.swap(0))
        b = impl.AtomicBool(False)
        b.compare_exchange(False, True)
        ref = impl.AtomicRef(value)
        ref.store(ref.swap(None))
        ref.compare_exchange(value, value)
        assert ref.load() is value

        sender, receiver = impl.channel(2, "ch")
        sender.send(value)
        assert receiver.recv() is value
        sender.clone().close()
        sender.send(value)
        assert receiver.try_recv() is value
        sender.close()
        receiver.close()


def test_no_reference_leaks(impl: Any) -> None:
    m = impl.Mutex(None)
    value = object()
    lock_cycles(impl, m, value, 100)  # warm caches (imports, interned strings)
    family_cycles(impl, value, 20)
    gc.collect()
    before = (sys.getrefcount(m), sys.getrefcount(value))
    lock_cycles(impl, m, value, 1000)
    family_cycles(impl, value, 300)
    gc.collect()
    assert (sys.getrefcount(m), sys.getrefcount(value)) == before


@pytest.mark.parametrize("cycles", [lock_cycles, family_cycles], ids=["mutex", "families"])
def test_no_memory_growth(impl: Any, cycles: Callable[..., None]) -> None:
    args: tuple[Any, ...] = (impl, impl.Mutex(0)) if cycles is lock_cycles else (impl,)
    value = object()
    cycles(*args, value, 200)
    gc.collect()
    tracemalloc.start()
    try:
        cycles(*args, value, 200)
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        cycles(*args, value, 2000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes retained over 2000 rounds"


def test_no_reference_leaks_on_foreign_release(checked_impl: Any) -> None:
    m = checked_impl.Mutex(None)
    guard = m.lock()
    cv = checked_impl.Condvar()

    def attempts() -> None:
        for _ in range(500):
            with pytest.raises(RuntimeError):
                guard.unlock()
            with pytest.raises(RuntimeError):
                guard.__exit__(None, None, None)
            with pytest.raises(RuntimeError):
                cv.wait_timeout(guard, 0)

    outcome_in_thread(attempts)
    gc.collect()
    before = (sys.getrefcount(m), sys.getrefcount(guard))
    outcome_in_thread(attempts)
    gc.collect()
    assert (sys.getrefcount(m), sys.getrefcount(guard)) == before
    guard.unlock()
