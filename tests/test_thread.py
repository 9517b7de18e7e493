"""`concurrency.thread`: spawn/JoinHandle, scope, current, local, yield_now, sleep."""

from __future__ import annotations

import threading
import time

import pytest
from sync_helpers import JOIN_TIMEOUT, assert_took, real_threads_only

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic


class Boom(Exception):
    pass


# --------------------------------------------------------------------------- spawn / join


@concurrency.test
def test_join_returns_the_result_and_passes_arguments() -> None:
    def combine(a: int, b: int, *, scale: int) -> int:
        return (a + b) * scale

    handle = thread.spawn(combine, 1, 2, scale=10)
    assert isinstance(handle, thread.JoinHandle)
    assert handle.join(JOIN_TIMEOUT) == 30
    assert handle.is_finished()


@concurrency.test
def test_join_reraises_the_threads_exception() -> None:
    error = Boom("from the worker")

    def fail() -> None:
        raise error

    handle = thread.spawn(fail)
    with pytest.raises(Boom) as info:
        handle.join(JOIN_TIMEOUT)
    assert info.value is error
    assert handle.is_finished()


@concurrency.test
def test_join_reraises_a_panic() -> None:
    def panic() -> None:
        raise concurrency.Panic("thread crashed")

    with pytest.raises(concurrency.Panic, match="thread crashed"):
        thread.spawn(panic).join(JOIN_TIMEOUT)


@concurrency.test
def test_names_and_current() -> None:
    handle = thread.spawn(lambda: thread.current().name, name="worker-1")
    assert handle.name == "worker-1"
    assert handle.join(JOIN_TIMEOUT) == "worker-1"
    unnamed = thread.spawn(lambda: thread.current().name)
    assert unnamed.join(JOIN_TIMEOUT) == unnamed.name
    assert isinstance(thread.current().name, str)


@concurrency.test
def test_is_finished_tracks_the_thread() -> None:
    gate = sync.Mutex(0)
    held = gate.lock()

    def blocked() -> None:
        gate.lock().unlock()

    handle = thread.spawn(blocked)
    assert not handle.is_finished()  # it cannot get past the lock we hold
    held.unlock()
    handle.join(JOIN_TIMEOUT)
    assert handle.is_finished()


@concurrency.test(iterations=1)
def test_spawn_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="not callable"):
        thread.spawn(42)  # type: ignore[arg-type]


@concurrency.test(iterations=1)
def test_join_timeout_is_validated() -> None:
    handle = thread.spawn(lambda: None)
    with pytest.raises(ValueError, match="join"):
        handle.join(-1)
    handle.join(JOIN_TIMEOUT)


# --------------------------------------------------------------------------- scope


@concurrency.test
def test_scope_joins_everything_it_spawned() -> None:
    done = atomic.AtomicInt(0)
    with thread.scope() as s:
        handles = [s.spawn(done.fetch_add, 1) for _ in range(2)]
    assert done.load() == 2
    assert all(h.is_finished() for h in handles)
    assert sorted(h.join() for h in handles) == [0, 1]


@concurrency.test
def test_scope_raises_unjoined_thread_errors_as_a_group() -> None:
    def fail(message: str) -> None:
        raise Boom(message)

    with pytest.raises(ExceptionGroup) as info, thread.scope() as s:
        s.spawn(fail, "one")
        s.spawn(fail, "two")
        s.spawn(lambda: "fine")
    assert sorted(str(e) for e in info.value.exceptions) == ["one", "two"]
    assert all(isinstance(e, Boom) for e in info.value.exceptions)


@concurrency.test
def test_scope_groups_the_body_error_with_thread_errors() -> None:
    finished = atomic.AtomicBool(False)

    def slow_fail() -> None:
        thread.yield_now()
        finished.store(True)
        raise Boom("thread")

    with pytest.raises(ExceptionGroup) as info, thread.scope() as s:
        s.spawn(slow_fail)
        raise KeyError("body")
    assert finished.load()  # joined before the group came out
    kinds = sorted(type(e).__name__ for e in info.value.exceptions)
    assert kinds == ["Boom", "KeyError"]


@concurrency.test
def test_scope_does_not_repeat_an_error_already_joined() -> None:
    def fail() -> None:
        raise Boom("seen")

    with thread.scope() as s:
        handle = s.spawn(fail)
        with pytest.raises(Boom):
            handle.join()
    # no ExceptionGroup: the only error was observed through join


@concurrency.test
def test_scope_without_errors_is_silent() -> None:
    with thread.scope() as s:
        handle = s.spawn(lambda: 7)
    assert handle.join() == 7


# --------------------------------------------------------------------------- local, yield, sleep


@concurrency.test
def test_local_is_per_thread() -> None:
    ns = thread.local()
    ns.value = "main"

    def in_thread() -> tuple[bool, str]:
        had_value = hasattr(ns, "value")
        ns.value = "worker"
        return had_value, ns.value

    assert thread.spawn(in_thread).join(JOIN_TIMEOUT) == (False, "worker")
    assert ns.value == "main"
    del ns.value
    with pytest.raises(AttributeError):
        _ = ns.value


@concurrency.test
def test_two_threads_two_locals() -> None:
    ns = thread.local()

    def own(tag: str) -> str:
        ns.tag = tag
        thread.yield_now()
        return ns.tag  # type: ignore[no-any-return]

    with thread.scope() as s:
        a = s.spawn(own, "a")
        b = s.spawn(own, "b")
    assert (a.join(), b.join()) == ("a", "b")


@concurrency.test(iterations=1)
def test_yield_now_and_sleep() -> None:
    assert thread.yield_now() is None
    assert thread.sleep(0) is None
    assert thread.sleep(0.001) is None
    with pytest.raises(ValueError, match="sleep"):
        thread.sleep(-1)
    with pytest.raises(TypeError, match="sleep"):
        thread.sleep(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- real time


@real_threads_only
def test_join_timeout_raises_within_tolerance() -> None:
    release = threading.Event()
    handle = thread.spawn(release.wait, 10, name="sleeper")
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="sleeper"):
        handle.join(0.2)
    assert_took(time.monotonic() - start, 0.2)
    assert not handle.is_finished()
    release.set()
    assert handle.join(10) is True


@real_threads_only
def test_a_thread_cannot_join_itself() -> None:
    me: list[thread.JoinHandle[object]] = []
    ready = threading.Event()

    def join_self() -> None:
        ready.wait(10)
        me[0].join()

    me.append(thread.spawn(join_self))
    ready.set()
    with pytest.raises(RuntimeError, match="join itself"):
        me[0].join(10)


@real_threads_only
def test_sleep_really_sleeps() -> None:
    start = time.monotonic()
    thread.sleep(0.1)
    assert_took(time.monotonic() - start, 0.1)


@real_threads_only
def test_spawned_threads_are_os_threads() -> None:
    idents = thread.spawn(threading.get_ident).join(10), threading.get_ident()
    assert idents[0] != idents[1]
