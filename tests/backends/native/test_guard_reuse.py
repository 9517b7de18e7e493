"""The native Mutex's idle guards: lock() may hand a released guard out again.

To spare an allocation per lock(), a native Mutex keeps the two guards
released last and reuses one when nothing but the Mutex refers to it (see
"the idle guards" in `concurrency/backends/native/mutex.c`). These tests pin
what that must never change:

- a released guard anybody still holds stays stale for ever: it is never
  handed out again, even by the same Mutex, from any thread;
- a guard dropped while held still releases the lock (and warns, checked),
  naming the line that acquired *this* hold;
- the cache keeps neither the Mutex nor anything else alive, and takes part
  in cycle collection;
- guard classes whose instances carry more than the guard itself (a
  `__dict__`, weak references, extra slots, a finalizer) are never reused;
- Condvar waits, poisoning and copy/pickle refusal behave the same on a
  reused guard.

Objects are built from `native.bind(...)` directly, whatever
`CONCURRENCY_BACKEND` says, as in `test_mutex_pairs.py`.
"""

from __future__ import annotations

import copy
import gc
import pickle
import random
import subprocess
import sys
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from concurrency import PoisonError
from concurrency.backends import native

WAIT = 10.0
pytestmark = pytest.mark.skipif(
    native.CORE is None, reason="native core not compiled here, or CONCURRENCY_PURE_PYTHON=1"
)


@pytest.fixture(params=[False, True], ids=["native", "native-checked"])
def classes(request: pytest.FixtureRequest) -> Any:
    return native.bind(checked=request.param)


@pytest.fixture
def resource_warnings() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def assert_stale(guard: Any) -> None:
    """`guard` is released: every use raises, and it holds no mutex."""
    assert guard._mutex is None
    with pytest.raises(RuntimeError, match="already released"):
        guard.value  # noqa: B018
    with pytest.raises(RuntimeError, match="already released"):
        guard.value = "x"
    with pytest.raises(RuntimeError, match="already released"):
        guard.unlock()


def lock_and_release(m: Any) -> int:
    """Take and release `m` through a `with`, keeping no reference: the id of the guard."""
    with m.lock() as g:
        ident = id(g)
    del g
    return ident


# --------------------------------------------------------------------------- reuse happens


def test_an_unreferenced_released_guard_is_reused(classes: Any) -> None:
    """Without this the other tests would prove nothing: the fast path does reuse."""
    m = classes.Mutex(0)
    first = lock_and_release(m)
    assert all(lock_and_release(m) == first for _ in range(10))


def test_the_usual_loop_alternates_between_two_guards(classes: Any) -> None:
    """In `with m.lock() as g:` in a loop, `g` still holds the previous guard when
    lock() runs: the Mutex keeps two, so that loop allocates nothing either."""
    m = classes.Mutex(0)
    seen = []
    for _ in range(20):
        with m.lock() as g:
            g.value += 1
            seen.append(id(g))
    assert len(set(seen[2:])) == 2 and seen[2] != seen[3]
    assert_stale(g)
    del g
    with m.lock() as g:
        assert g.value == 20


# --------------------------------------------------------------------------- stale stays stale


def test_a_stale_guard_stays_stale_when_the_mutex_is_locked_again(classes: Any) -> None:
    m = classes.Mutex(0)
    g = m.lock()
    g.unlock()
    for _ in range(5):
        with m.lock() as again:
            assert again is not g
            again.value += 1
        assert_stale(g)
    assert_stale(again)
    del again
    with m.lock() as last:
        assert last is not g and last.value == 5
    assert_stale(g)


def test_a_guard_kept_after_its_with_block_is_never_handed_out_again(classes: Any) -> None:
    m = classes.Mutex(0)
    kept = []
    for _ in range(20):
        with m.lock() as g:
            assert all(g is not old for old in kept)
        kept.append(g)
    del g
    for old in kept:
        assert_stale(old)
    assert len({id(g) for g in kept}) == len(kept)


def test_a_guard_referenced_only_from_a_container_is_not_reused(classes: Any) -> None:
    m = classes.Mutex(0)
    box = [m.lock()]
    box[0].unlock()
    with m.lock() as g:
        assert g is not box[0]
    assert_stale(box[0])


def test_a_reused_guard_is_a_new_hold(classes: Any) -> None:
    """Reuse resets the guard: owner, value access and release all belong to the new hold."""
    m = classes.Mutex("a")
    with m.lock() as g:
        g.value = "b"
    del g
    results: list[Any] = []

    def other_thread() -> None:
        with m.lock() as g:
            results.append((g.value, g._owner == threading.get_ident()))

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(WAIT)
    with m.lock() as g:
        assert g._mutex is m and g._owner == threading.get_ident()
        assert g.value == "b" and not m.is_poisoned()
    assert results == [("b", True)]


def test_stale_guards_passed_between_threads_stay_stale(classes: Any) -> None:
    """Threads lock one Mutex while stale guards travel between them through a shared
    list; a guard handed out by lock() must never be one of those still referenced."""
    if classes.Mutex._checked_:
        pytest.skip("releases from other threads are refused when checked; covered unchecked")
    m = classes.Mutex(0)
    stash: list[Any] = []
    stash_lock = threading.Lock()
    errors: list[str] = []
    start = threading.Barrier(3)

    def work(seed: int) -> None:
        rnd = random.Random(seed)
        held: Any = None  # a stale guard this thread took from another
        start.wait(WAIT)
        for _ in range(3000):
            with m.lock() as g:
                if g is held:
                    errors.append("lock() handed out a guard this thread still holds")
                with stash_lock:
                    if any(g is old for old in stash):
                        errors.append("lock() handed out a guard that is still referenced")
                g.value += 1
            action = rnd.random()
            with stash_lock:
                if action < 0.3:
                    stash.append(g)  # a stale guard leaves this thread...
                elif action < 0.5 and stash:
                    held = stash.pop(rnd.randrange(len(stash)))  # ...and arrives in another
                    if held._mutex is not None:
                        errors.append("a stashed guard became valid again")
                    if rnd.random() < 0.5:
                        stash.append(held)
                elif action < 0.6:
                    stash[:] = stash[-50:]
                    held = None
            del g

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 6)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    for old in stash:
        assert_stale(old)
    with m.lock() as g:
        assert g.value == 9000


def test_a_guard_released_on_another_thread_stays_stale(classes: Any) -> None:
    if classes.Mutex._checked_:
        pytest.skip("releases from other threads are refused when checked")
    m = classes.Mutex(0)
    g = m.lock()
    t = threading.Thread(target=g.unlock)
    t.start()
    t.join(WAIT)
    assert not m.is_locked()
    for _ in range(3):
        with m.lock() as again:
            assert again is not g
    assert_stale(g)


# --------------------------------------------------------------------------- dropped while held


def test_a_reused_guard_dropped_while_held_still_releases(
    classes: Any, resource_warnings: list[warnings.WarningMessage]
) -> None:
    m = classes.Mutex(0, name="reused")
    lock_and_release(m)  # the next lock() may hand out the idle guard
    m.lock(); line = sys._getframe().f_lineno  # noqa: E702  # dropped at once, while held
    assert not m.is_locked() and not m.is_poisoned()
    messages = [str(w.message) for w in resource_warnings if w.category is ResourceWarning]
    if classes.Mutex._checked_:
        # It names where *this* hold was taken, not where the reused guard was first made.
        assert len(messages) == 1 and f"{__file__}:{line} was dropped while held" in messages[0]
    else:
        assert messages == []
    with m.lock() as g:
        g.value += 1
    assert lock_and_release(m) and not m.is_locked()


def test_dropping_a_held_guard_repeatedly_neither_leaks_nor_deadlocks(
    classes: Any, resource_warnings: list[warnings.WarningMessage]
) -> None:
    m = classes.Mutex(0)
    for _ in range(100):
        lock_and_release(m)
        m.lock()
        assert not m.is_locked()


# --------------------------------------------------------------------------- lifetimes


class Value:
    """A protected value we can watch die (weakref-able, unlike int)."""


def test_the_idle_guard_does_not_keep_the_mutex_alive(classes: Any) -> None:
    value = Value()
    dead = weakref.ref(value)
    m = classes.Mutex(value)
    del value
    lock_and_release(m)
    stale = m.lock()
    stale.unlock()  # a stale guard the caller keeps, also the idle one
    gc.disable()
    try:
        del m  # freed by reference counting alone: no cycle through the idle guard
        assert dead() is None
    finally:
        gc.enable()
    assert_stale(stale)


CYCLE_THROUGH_THE_GUARD_CLASS = """
import gc, sys, weakref
from concurrency.backends import native

classes = native.bind(checked=sys.argv[1] == "checked")

class Value:
    pass

class Guard(classes.MutexGuard):
    __slots__ = ()

class Mutex(classes.Mutex):
    __slots__ = ()
    _guard_class = Guard

value = Value()
dead = weakref.ref(value)
m = Mutex(value)
Guard.mutex = m  # mutex -> idle guard -> its class -> mutex
with m.lock():
    pass
del value, m, Guard, Mutex
gc.collect()
print(dead() is None)
"""


def test_a_cycle_through_the_guard_class_is_collected(classes: Any) -> None:
    """The Mutex reports its idle guard to the collector: otherwise the guard would
    look externally referenced and keep its class, and everything it reaches, alive.

    In a fresh interpreter: on 3.13t a cycle through a class defined after other
    threads have run is not collected at all, idle guard or not (a CPython matter)."""
    mode = "checked" if classes.Mutex._checked_ else "fast"
    done = subprocess.run([sys.executable, "-c", CYCLE_THROUGH_THE_GUARD_CLASS, mode],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"]


def _guard_classes(classes: Any, body: dict[str, Any]) -> Any:
    guard = type("Guard", (classes.MutexGuard,), body)
    return type("Mutex", (classes.Mutex,), {"__slots__": (), "_guard_class": guard})


@pytest.mark.parametrize("extra", ["dict", "slot"])
def test_guards_with_attributes_are_never_reused(classes: Any, extra: str) -> None:
    """An attribute set on one hold's guard must not show up on a later hold's."""
    body: dict[str, Any] = {} if extra == "dict" else {"__slots__": ("note",)}
    m = _guard_classes(classes, body)(0)
    for _ in range(5):
        with m.lock() as g:
            assert not hasattr(g, "note")
            g.note = "mine"
        del g


def test_weakly_referenced_guards_are_never_reused(classes: Any) -> None:
    """A weak reference would hand a stale guard back: such guards die when dropped."""
    for body in ({}, {"__slots__": ("__weakref__",)}):
        m = _guard_classes(classes, body)(0)
        for _ in range(5):
            with m.lock() as g:
                ref = weakref.ref(g)
            del g
            assert ref() is None  # freed at once, not kept for the next lock()
            with m.lock() as g:
                assert ref() is None
            del g


def test_guards_with_a_finalizer_are_never_reused(classes: Any) -> None:
    finalized: list[int] = []
    m = _guard_classes(classes, {"__slots__": (), "__del__": lambda self: finalized.append(1)})(0)
    for count in range(1, 6):
        lock_and_release(m)
        assert len(finalized) == count  # every guard died: none was kept aside


def test_a_finalizer_added_to_the_guard_class_later_is_honoured(classes: Any) -> None:
    mutex_class = _guard_classes(classes, {"__slots__": ()})
    m = mutex_class(0)
    lock_and_release(m)  # cached before the class had a finalizer
    finalized: list[int] = []
    mutex_class._guard_class.__del__ = lambda self: finalized.append(1)
    lock_and_release(m)
    lock_and_release(m)
    assert len(finalized) == 2


def test_a_guard_whose_class_was_swapped_is_not_reused(classes: Any) -> None:
    """lock() hands out guards of the Mutex's guard class only."""
    other = type("Other", (classes.MutexGuard,), {"__slots__": ()})
    m = classes.Mutex(0)
    with m.lock() as g:
        g.__class__ = other
    del g
    with m.lock() as g:
        assert type(g) is classes.MutexGuard


def test_plain_subclass_guards_are_reused(classes: Any) -> None:
    """The restriction is on what the guard carries, not on subclassing."""
    m = _guard_classes(classes, {"__slots__": ()})(0)
    first = lock_and_release(m)
    assert all(lock_and_release(m) == first for _ in range(5))


# --------------------------------------------------------------------------- the rest, reused


def test_condvar_wait_with_a_reused_guard(classes: Any) -> None:
    m = classes.Mutex(0)
    cv = classes.Condvar()
    lock_and_release(m)

    def bump() -> None:
        with m.lock() as g:
            g.value += 1
            cv.notify_all()

    with m.lock() as g:
        t = threading.Thread(target=bump)
        t.start()
        cv.wait_while(g, lambda v: v == 0)
        assert g.value == 1 and g._mutex is m
    t.join(WAIT)
    assert_stale(g)
    del g
    with m.lock() as g:
        assert cv.wait_timeout(g, 0.01) is True and g.value == 1


def test_poison_and_clear_with_reused_guards(classes: Any) -> None:
    m = classes.Mutex(0)
    lock_and_release(m)
    with pytest.raises(KeyError), m.lock() as g:
        raise KeyError("boom")
    assert m.is_poisoned() and not m.is_locked()
    assert_stale(g)
    with pytest.raises(PoisonError):
        m.lock()
    assert not m.is_locked()
    m.clear_poison()
    with m.lock() as again:
        assert again is not g
    assert_stale(g)


def test_a_reused_guard_cannot_be_copied_or_pickled(classes: Any) -> None:
    m = classes.Mutex(0)
    lock_and_release(m)
    with m.lock() as g:
        with pytest.raises(TypeError):
            copy.copy(g)
        with pytest.raises(TypeError):
            pickle.dumps(g)
    assert not m.is_locked()


def test_try_lock_and_try_lock_for_reuse_soundly(classes: Any) -> None:
    m = classes.Mutex(0)
    g = m.try_lock()
    assert g is not None
    g.unlock()
    h = m.try_lock_for(1.0)
    assert h is not None and h is not g and h._mutex is m
    assert m.try_lock() is None
    h.unlock()
    assert_stale(g)
    assert_stale(h)
