"""Every facade operation inside `concurrency.check` behaves as it does on real threads.

Most bodies here run twice: exhaustively under the model checker (`dfs`, which
must cover the whole schedule space without a failure) and once directly on
real threads (the process backend). A body asserts only what holds in every
interleaving, so passing both ways means the model keeps the real semantics,
poisoning included. Misuse checks, which the lean `fast` backend need not
make, run under the model only. These tests call `check()` themselves, so they
run the same whatever `CONCURRENCY_BACKEND` says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic

# Real-thread timeouts in these bodies are short (they only ever expire when nothing
# can happen); joins are generous so a hang becomes an error instead of a kill.
SHORT = 0.05
LONG = 10.0

Body = Callable[[], None]


class Boom(Exception):
    """The exception the crashing bodies raise."""


def explore(body: Body) -> concurrency.Report:
    """Every schedule of `body` under DFS; it must cover them all without a failure."""
    report = concurrency.check(body, "dfs", iterations=20_000)
    assert report.exhausted, f"DFS did not cover {body.__name__} in {report.iterations} runs"
    return report


def run_model(body: Body) -> None:
    explore(body)


def run_real(body: Body) -> None:
    body()


@pytest.fixture(params=[run_model, run_real], ids=["model", "real-threads"])
def run(request: pytest.FixtureRequest) -> Callable[[Body], None]:
    """Run a body under the model (all schedules) and on real threads."""
    runner: Callable[[Body], None] = request.param
    return runner


def modelled(obj: object) -> bool:
    """Whether `obj` was built by the model backend (it was created inside `check`)."""
    return type(obj).__module__.startswith("concurrency.backends.model")


def join(handle: thread.JoinHandle[Any]) -> Any:
    """Join with a generous timeout on real threads; untimed under the model, where a
    timed join may time out as a mere scheduling choice."""
    return handle.join(timeout=None if modelled(handle) else LONG)


# --------------------------------------------------------------------------- modelling


def test_objects_created_inside_an_execution_are_modelled() -> None:
    kinds: dict[str, str] = {}

    def body() -> None:
        tx, rx = sync.channel()
        made = [sync.Mutex(), sync.RwLock(), sync.Condvar(), sync.OnceLock(), sync.Barrier(1),
                sync.Semaphore(1), atomic.AtomicInt(), atomic.AtomicBool(), atomic.AtomicRef(),
                tx, rx, thread.spawn(lambda: None)]
        for obj in made:
            kinds[type(obj).__name__] = type(obj).__module__

    concurrency.check(body, "random", iterations=1)
    assert len(kinds) == 12
    assert all(module.startswith("concurrency.backends.model") for module in kinds.values()), kinds
    assert not modelled(sync.Mutex())


def test_check_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="not callable"):
        concurrency.check(42, "dfs")
    with pytest.raises(ValueError, match="bogus"):
        concurrency.check(lambda: None, "bogus")
    with pytest.raises(ValueError, match="iterations"):
        concurrency.check(lambda: None, "random", iterations=0)
    with pytest.raises(ValueError, match="max_steps"):
        concurrency.check(lambda: None, "random", max_steps=-1)
    with pytest.raises(ValueError, match="pct_depth"):
        concurrency.check(lambda: None, "pct", pct_depth=0)
    with pytest.raises(ValueError, match="preemption_bound"):
        concurrency.check(lambda: None, "dfs", preemption_bound=-1)


# --------------------------------------------------------------------------- Mutex


def test_mutex_counter(run: Callable[[Body], None]) -> None:
    def body() -> None:
        counter = sync.Mutex(0)

        def add_twice() -> None:
            for _ in range(2):
                with counter.lock() as guard:
                    guard.value += 1

        with thread.scope() as s:
            s.spawn(add_twice)
            s.spawn(add_twice)
        with counter.lock() as guard:
            assert guard.value == 4

    run(body)


def test_mutex_try_lock_and_timeout_while_held(run: Callable[[Body], None]) -> None:
    def body() -> None:
        m = sync.Mutex("v")

        def probe() -> tuple[bool, bool, bool]:
            return m.try_lock() is None, m.try_lock_for(SHORT) is None, m.is_locked()

        with m.lock():
            assert join(thread.spawn(probe)) == (True, True, True)
        assert not m.is_locked()
        guard = m.try_lock()
        assert guard is not None and guard.value == "v"
        guard.value = "w"
        guard.unlock()
        with m.try_lock_for(SHORT) as again:  # type: ignore[union-attr]
            assert again.value == "w"

    run(body)


def test_mutex_poisoning_and_clear_poison(run: Callable[[Body], None]) -> None:
    def body() -> None:
        m = sync.Mutex(0, name="ledger")

        def crash() -> None:
            with m.lock() as guard:
                guard.value = 99
                raise Boom("half-way")

        with pytest.raises(Boom):
            join(thread.spawn(crash))
        assert m.is_poisoned()
        for acquire in (m.lock, m.try_lock, lambda: m.try_lock_for(SHORT)):
            with pytest.raises(sync.PoisonError) as caught:
                acquire()
            assert caught.value.lock == "ledger"
            assert isinstance(caught.value.original, Boom)
            assert "ledger" in str(caught.value)
        m.clear_poison()
        with m.lock() as guard:
            assert guard.value == 99

    run(body)


def test_poison_error_is_a_panic_that_except_exception_does_not_catch() -> None:
    def body() -> None:
        m = sync.Mutex(0)
        with pytest.raises(Boom), m.lock():
            raise Boom
        try:
            m.lock()
        except Exception:  # must not swallow a Panic
            raise AssertionError("PoisonError was caught by `except Exception`") from None
        except concurrency.Panic:
            pass

    explore(body)


def test_mutex_misuse_is_detected_under_the_model() -> None:
    def body() -> None:
        m = sync.Mutex(0, name="m")
        guard = m.lock()
        with pytest.raises(RuntimeError, match="already locked"):
            m.lock()

        def foreign_release() -> None:
            with pytest.raises(RuntimeError, match="only the owner"):
                guard.unlock()

        join(thread.spawn(foreign_release))
        guard.unlock()
        with pytest.raises(RuntimeError, match="already released"):
            guard.unlock()
        with pytest.raises(RuntimeError, match="already released"):
            _ = guard.value

    explore(body)


# --------------------------------------------------------------------------- RwLock


def test_rwlock_upgrade_is_atomic(run: Callable[[Body], None]) -> None:
    def body() -> None:
        rw = sync.RwLock(0)

        def increment() -> None:
            with rw.upgradable_read() as upgradable:
                seen = upgradable.value
                with upgradable.upgrade() as writer:
                    assert writer.value == seen, "a writer got in between read and upgrade"
                    writer.value = seen + 1

        def plain_writer() -> None:
            with rw.write() as writer:
                writer.value += 10

        with thread.scope() as s:
            s.spawn(increment)
            s.spawn(increment)
            s.spawn(plain_writer)
        with rw.read() as reader:
            assert reader.value == 12

    run(body)


def test_rwlock_upgradable_coexists_with_readers_but_not_another_upgradable(
    run: Callable[[Body], None],
) -> None:
    def body() -> None:
        rw = sync.RwLock("data")

        def other() -> tuple[Any, bool, bool]:
            reader = rw.try_read()
            assert reader is not None
            value = reader.value
            reader.unlock()
            return value, rw.try_upgradable_read() is None, rw.try_write() is None

        with rw.upgradable_read():
            assert join(thread.spawn(other)) == ("data", True, True)

    run(body)


def test_rwlock_downgrade_is_atomic(run: Callable[[Body], None]) -> None:
    def body() -> None:
        rw = sync.RwLock(0)

        def write_then_downgrade() -> None:
            writer = rw.write()
            writer.value = 1
            with writer.downgrade() as reader:
                thread.yield_now()
                assert reader.value == 1, "a writer got in after the downgrade"

        def overwrite() -> None:
            with rw.write() as writer:
                writer.value = 2

        with thread.scope() as s:
            s.spawn(write_then_downgrade)
            s.spawn(overwrite)
        with rw.read() as reader:
            assert reader.value in (1, 2)

    run(body)


def test_rwlock_timeouts_and_try_while_written(run: Callable[[Body], None]) -> None:
    def body() -> None:
        rw = sync.RwLock(5)

        def probe() -> list[bool]:
            return [rw.try_read() is None, rw.try_write() is None,
                    rw.try_upgradable_read() is None,
                    rw.try_read_for(SHORT) is None, rw.try_write_for(SHORT) is None]

        with rw.write():
            assert join(thread.spawn(probe)) == [True] * 5
        with rw.read():
            writer_attempt = join(thread.spawn(lambda: rw.try_write_for(SHORT)))
            assert writer_attempt is None
        with rw.try_write_for(SHORT) as writer:  # type: ignore[union-attr]
            assert writer.value == 5

    run(body)


def test_rwlock_poisoning(run: Callable[[Body], None]) -> None:
    def body() -> None:
        rw = sync.RwLock(0, name="table")

        def crash_reading() -> None:
            with rw.read():
                raise Boom("reader")

        with pytest.raises(Boom):
            join(thread.spawn(crash_reading))
        assert not rw.is_poisoned(), "a read guard never poisons"

        def crash_upgradable() -> None:
            with rw.upgradable_read():
                raise Boom("upgradable")

        with pytest.raises(Boom):
            join(thread.spawn(crash_upgradable))
        assert rw.is_poisoned()
        rw.clear_poison()

        def crash_writing() -> None:
            with rw.write() as writer:
                writer.value = 7
                raise Boom("writer")

        with pytest.raises(Boom):
            join(thread.spawn(crash_writing))
        for acquire in (rw.read, rw.write, rw.upgradable_read, rw.try_read, rw.try_write):
            with pytest.raises(sync.PoisonError, match="table"):
                acquire()
        rw.clear_poison()
        with rw.read() as reader:
            assert reader.value == 7

    run(body)


def test_rwlock_recursive_acquisition_is_refused_under_the_model() -> None:
    def body() -> None:
        rw = sync.RwLock(0, name="rw")
        with rw.read(), pytest.raises(RuntimeError, match="already holds a read guard"):
            rw.read()

    explore(body)


# --------------------------------------------------------------------------- Condvar


def test_condvar_wait_while(run: Callable[[Body], None]) -> None:
    def body() -> None:
        state = sync.Mutex(0)
        ready = sync.Condvar()

        def producer() -> None:
            with state.lock() as guard:
                guard.value = 1
                ready.notify_one()

        handle = thread.spawn(producer)
        with state.lock() as guard:
            ready.wait_while(guard, lambda value: value == 0)
            assert guard.value == 1
        join(handle)

    run(body)


def test_condvar_notify_all_wakes_every_waiter(run: Callable[[Body], None]) -> None:
    def body() -> None:
        state = sync.Mutex(False)
        go = sync.Condvar()
        woke = atomic.AtomicInt()

        def waiter() -> None:
            with state.lock() as guard:
                while not guard.value:
                    go.wait(guard)
            woke.fetch_add(1)

        with thread.scope() as s:
            s.spawn(waiter)
            s.spawn(waiter)
            with state.lock() as guard:
                guard.value = True
                go.notify_all()
        assert woke.load() == 2

    run(body)


def test_condvar_timeouts_without_a_notifier(run: Callable[[Body], None]) -> None:
    def body() -> None:
        state = sync.Mutex(0)
        never = sync.Condvar()
        with state.lock() as guard:
            assert never.wait_timeout(guard, SHORT) is True
            assert never.wait_timeout_while(guard, SHORT, lambda value: value == 0) is True
            assert never.wait_timeout_while(guard, SHORT, lambda value: value == 1) is False
            guard.value = 3  # the guard is held again after every wait
        with state.lock() as guard:
            assert guard.value == 3

    run(body)


def test_condvar_wait_timeout_while_with_a_notifier(run: Callable[[Body], None]) -> None:
    def body() -> None:
        state = sync.Mutex(0)
        changed = sync.Condvar()

        def producer() -> None:
            with state.lock() as guard:
                guard.value = 1
                changed.notify_all()

        handle = thread.spawn(producer)
        with state.lock() as guard:
            timed_out = changed.wait_timeout_while(guard, LONG, lambda value: value == 0)
            assert timed_out == (guard.value == 0)
        join(handle)

    run(body)


def test_condvar_misuse_under_the_model() -> None:
    def body() -> None:
        first, second = sync.Mutex(name="first"), sync.Mutex(name="second")
        cv = sync.Condvar()
        with first.lock() as guard:
            cv.wait_timeout(guard, 1.0)
        with second.lock() as guard, pytest.raises(RuntimeError, match="same Mutex"):
            cv.wait_timeout(guard, 1.0)
        with pytest.raises(TypeError, match="MutexGuard"):
            cv.wait(object())  # type: ignore[arg-type]
        with first.lock() as guard, pytest.raises(ValueError, match="wait_timeout"):
            cv.wait_timeout(guard, -1)

    explore(body)


# --------------------------------------------------------------------------- OnceLock


def test_once_lock_runs_exactly_one_initializer(run: Callable[[Body], None]) -> None:
    def body() -> None:
        cell = sync.OnceLock()
        calls = atomic.AtomicInt()

        def init() -> str:
            return f"made-{calls.fetch_add(1)}"

        assert cell.get() is None
        with thread.scope() as s:
            first = s.spawn(cell.get_or_init, init)
            second = s.spawn(cell.get_or_init, init)
        assert first.join() == second.join() == cell.get() == "made-0"
        assert calls.load() == 1
        assert cell.set("other") is False

    run(body)


def test_once_lock_failing_initializer_leaves_it_empty(run: Callable[[Body], None]) -> None:
    def body() -> None:
        cell = sync.OnceLock()

        def failing() -> str:
            raise Boom("init failed")

        def attempt(fn: Callable[[], str]) -> str:
            try:
                return cell.get_or_init(fn)
            except Boom:
                return "raised"

        with thread.scope() as s:
            bad = s.spawn(attempt, failing)
            good = s.spawn(attempt, lambda: "ok")
        assert good.join() == "ok"
        assert bad.join() in ("raised", "ok")  # "ok" when the good one won first
        assert cell.get() == "ok"

        empty = sync.OnceLock()
        with pytest.raises(Boom):
            empty.get_or_init(failing)
        assert empty.get() is None
        assert empty.set(1) is True and empty.get() == 1

    run(body)


def test_once_lock_set_races(run: Callable[[Body], None]) -> None:
    def body() -> None:
        cell = sync.OnceLock()
        with thread.scope() as s:
            a = s.spawn(cell.set, "a")
            b = s.spawn(cell.set, "b")
        assert sorted([a.join(), b.join()]) == [False, True]
        assert cell.get() == ("a" if a.join() else "b")

    run(body)


# --------------------------------------------------------------------------- Barrier


def test_barrier_has_exactly_one_leader(run: Callable[[Body], None]) -> None:
    def body() -> None:
        barrier = sync.Barrier(3)
        with thread.scope() as s:
            handles = [s.spawn(barrier.wait) for _ in range(2)]
            results = [barrier.wait(), *(h.join() for h in handles)]
        assert sum(result.is_leader for result in results) == 1

    run(body)


def test_barrier_abort_breaks_waiters(run: Callable[[Body], None]) -> None:
    def body() -> None:
        barrier = sync.Barrier(2)
        handle = thread.spawn(barrier.wait)
        barrier.abort()
        with pytest.raises(sync.BrokenBarrierError):
            join(handle)
        assert barrier.broken
        with pytest.raises(sync.BrokenBarrierError):
            barrier.wait()

    run(body)


def test_barrier_timeout_breaks_it(run: Callable[[Body], None]) -> None:
    def body() -> None:
        barrier = sync.Barrier(2)
        with pytest.raises(sync.BrokenBarrierError):
            barrier.wait(timeout=SHORT)
        assert barrier.broken
        barrier.reset()
        assert not barrier.broken
        with thread.scope() as s:
            other = s.spawn(barrier.wait)
            mine = barrier.wait()
        assert mine.is_leader != other.join().is_leader

    run(body)


def test_barrier_reset_breaks_current_waiters_and_rearms(run: Callable[[Body], None]) -> None:
    def body() -> None:
        barrier = sync.Barrier(2)
        handle = thread.spawn(barrier.wait)
        while barrier.n_waiting == 0:  # let the waiter arrive first
            thread.yield_now()
        barrier.reset()
        with pytest.raises(sync.BrokenBarrierError):
            join(handle)
        assert not barrier.broken
        with thread.scope() as s:
            other = s.spawn(barrier.wait)
            mine = barrier.wait()
        assert mine.is_leader != other.join().is_leader

    run(body)


# --------------------------------------------------------------------------- Semaphore


def test_semaphore_bounds_concurrency(run: Callable[[Body], None]) -> None:
    def body() -> None:
        permits = sync.Semaphore(1)
        inside = atomic.AtomicInt()

        def worker() -> None:
            with permits.acquire():
                assert inside.fetch_add(1) == 0, "two threads hold the only permit"
                thread.yield_now()
                inside.fetch_sub(1)

        with thread.scope() as s:
            s.spawn(worker)
            s.spawn(worker)
        assert permits.available() == 1

    run(body)


def test_semaphore_try_acquire(run: Callable[[Body], None]) -> None:
    def body() -> None:
        permits = sync.Semaphore(2)
        first, second = permits.acquire(), permits.try_acquire()
        assert second is not None and permits.available() == 0
        assert permits.try_acquire() is None
        assert permits.try_acquire_for(SHORT) is None
        first.unlock()
        with pytest.raises(RuntimeError):
            first.unlock()
        assert join(thread.spawn(permits.try_acquire)) is not None

    run(body)


# --------------------------------------------------------------------------- atomics


def test_atomic_operations(run: Callable[[Body], None]) -> None:
    def body() -> None:
        number = atomic.AtomicInt(5)
        assert number.fetch_add(3) == 5 and number.fetch_sub(1) == 8 and number.load() == 7
        assert number.swap(1) == 7
        assert number.compare_exchange(0, 9) == (False, 1)
        assert number.compare_exchange(1, 9) == (True, 1) and number.load() == 9
        flag = atomic.AtomicBool()
        flag.store(True)
        assert flag.load() is True and flag.swap(False) is True
        first, equal = [1], [1]
        ref = atomic.AtomicRef(first)
        assert ref.compare_exchange(equal, None) == (False, first), "AtomicRef compares identity"
        assert ref.compare_exchange(first, equal) == (True, first) and ref.load() is equal

    run(body)


def test_atomic_increments_are_not_lost(run: Callable[[Body], None]) -> None:
    def body() -> None:
        added, casd = atomic.AtomicInt(), atomic.AtomicInt()

        def work() -> None:
            added.fetch_add(1)
            while True:
                current = casd.load()
                if casd.compare_exchange(current, current + 1)[0]:
                    break

        with thread.scope() as s:
            s.spawn(work)
            s.spawn(work)
        assert (added.load(), casd.load()) == (2, 2)

    run(body)


# --------------------------------------------------------------------------- channels


def test_channel_delivers_in_order_then_disconnects(run: Callable[[Body], None]) -> None:
    def body() -> None:
        tx, rx = sync.channel()

        def produce(sender: sync.Sender[int], base: int) -> None:
            with sender:
                for i in range(2):
                    sender.send(base + i)

        with thread.scope() as s:
            s.spawn(produce, tx.clone(), 10)
            s.spawn(produce, tx, 20)
            received = list(rx)
        assert sorted(received) == [10, 11, 20, 21]
        assert received.index(10) < received.index(11) and received.index(20) < received.index(21)
        with pytest.raises(sync.Disconnected):
            rx.recv()
        with pytest.raises(sync.Disconnected):
            rx.try_recv()

    run(body)


def test_channel_empty_timeout_and_closed_receiver(run: Callable[[Body], None]) -> None:
    def body() -> None:
        tx, rx = sync.channel()
        with pytest.raises(sync.Empty):
            rx.try_recv()
        with pytest.raises(TimeoutError):
            rx.recv_timeout(SHORT)
        tx.send("kept")
        tx.close()
        assert rx.recv_timeout(SHORT) == "kept", "nothing sent before close is lost"
        tx2, rx2 = sync.channel()
        with rx2:
            pass
        with pytest.raises(sync.Disconnected):
            tx2.send(1)
        with pytest.raises(sync.Disconnected):
            tx.send(1)

    run(body)


def test_channel_close_semantics(run: Callable[[Body], None]) -> None:
    def body() -> None:
        tx, rx = sync.channel()
        tx.send("dropped")
        rx.close()
        rx.close()  # idempotent
        with pytest.raises(sync.Disconnected):
            tx.send("refused")
        with pytest.raises(sync.Disconnected):
            rx.try_recv()
        tx.close()
        tx.close()  # idempotent
        with pytest.raises(sync.Disconnected):
            tx.clone()

    run(body)


def test_rendezvous_send_waits_for_the_receiver(run: Callable[[Body], None]) -> None:
    def body() -> None:
        tx, rx = sync.sync_channel(0)
        delivered = atomic.AtomicBool()

        def sender() -> None:
            tx.send("hand-off")
            delivered.store(True)

        handle = thread.spawn(sender)
        thread.yield_now()
        assert not delivered.load(), "a rendezvous send returned before anyone received"
        assert rx.recv() == "hand-off"
        join(handle)
        assert delivered.load()

    run(body)


def test_rendezvous_sender_disconnected_by_receiver_close(run: Callable[[Body], None]) -> None:
    def body() -> None:
        tx, rx = sync.sync_channel(0)

        def sender() -> str:
            try:
                tx.send("never taken")
            except sync.Disconnected:
                return "disconnected"
            return "delivered"

        handle = thread.spawn(sender)
        rx.close()
        assert join(handle) == "disconnected"

    run(body)


def test_bounded_channel_blocks_the_sender_when_full(run: Callable[[Body], None]) -> None:
    def body() -> None:
        tx, rx = sync.sync_channel(1)
        sent = atomic.AtomicInt()

        def sender() -> None:
            for i in range(3):
                tx.send(i)
                sent.fetch_add(1)
            tx.close()

        handle = thread.spawn(sender)
        got = []
        for value in rx:
            # received so far: len(got) + 1; at most one more waits in the buffer
            assert sent.load() <= len(got) + 2, "more sends returned than the bound allows"
            got.append(value)
        join(handle)
        assert got == [0, 1, 2]

    run(body)


# --------------------------------------------------------------------------- threads


def test_join_handle_result_exception_timeout_and_is_finished(run: Callable[[Body], None]) -> None:
    def body() -> None:
        tx, rx = sync.channel()

        def wait_for_message() -> str:
            return f"got {rx.recv()}"

        handle = thread.spawn(wait_for_message, name="waiter")
        assert handle.name == "waiter"
        assert not handle.is_finished()
        with pytest.raises(TimeoutError):
            handle.join(timeout=SHORT)
        tx.send("x")
        assert join(handle) == "got x"
        assert handle.is_finished()
        assert join(handle) == "got x", "joining again returns the result again"

        def crash() -> None:
            raise Boom("in thread")

        with pytest.raises(Boom, match="in thread"):
            join(thread.spawn(crash))

    run(body)


def test_spawn_passes_arguments(run: Callable[[Body], None]) -> None:
    def body() -> None:
        def combine(a: int, b: int, *, c: int) -> tuple[int, int, int]:
            return a, b, c

        assert join(thread.spawn(combine, 1, 2, c=3)) == (1, 2, 3)
        with pytest.raises(TypeError):
            thread.spawn(42)  # type: ignore[arg-type]

    run(body)


def test_scope_joins_and_groups_unjoined_errors(run: Callable[[Body], None]) -> None:
    def body() -> None:
        finished = atomic.AtomicInt()

        def work() -> None:
            thread.yield_now()
            finished.fetch_add(1)

        def crash(tag: str) -> None:
            raise Boom(tag)

        with pytest.raises(BaseExceptionGroup) as caught, thread.scope() as s:
            s.spawn(work)
            joined = s.spawn(crash, "joined")
            s.spawn(crash, "unjoined")
            with pytest.raises(Boom):
                joined.join()
            raise KeyError("body")
        assert finished.load() == 1, "the scope joins every thread before raising"
        errors = caught.value.exceptions
        assert isinstance(errors[0], KeyError)
        assert [str(e) for e in errors[1:]] == ["unjoined"]

    run(body)


def test_current_name_and_local_are_per_thread(run: Callable[[Body], None]) -> None:
    def body() -> None:
        slot = thread.local()
        slot.owner = "main"

        def visit(tag: str) -> tuple[str, str, bool]:
            had_main = hasattr(slot, "owner")
            slot.owner = tag
            thread.yield_now()
            return thread.current().name, slot.owner, had_main

        with thread.scope() as s:
            left = s.spawn(visit, "L", name="left")
            right = s.spawn(visit, "R", name="right")
        assert left.join() == ("left", "L", False)
        assert right.join() == ("right", "R", False)
        assert slot.owner == "main"
        del slot.owner
        with pytest.raises(AttributeError):
            _ = slot.owner

    run(body)


def test_sleep_and_yield_now_inside_threads(run: Callable[[Body], None]) -> None:
    def body() -> None:
        order = sync.Mutex([])

        def step(tag: str, seconds: float) -> None:
            thread.sleep(seconds)
            thread.yield_now()
            with order.lock() as guard:
                guard.value.append(tag)

        with thread.scope() as s:
            s.spawn(step, "a", 0)
            s.spawn(step, "b", SHORT)
        with order.lock() as guard:
            assert sorted(guard.value) == ["a", "b"]
        with pytest.raises(ValueError, match="sleep"):
            thread.sleep(-1)

    run(body)


# --------------------------------------------------------------------------- unjoined threads


def test_unjoined_threads_run_to_completion() -> None:
    completed: list[str] = []

    def body() -> None:
        counter = atomic.AtomicInt()

        def late() -> None:
            thread.yield_now()
            counter.fetch_add(1)
            completed.append("late")

        thread.spawn(late)
        thread.spawn(late)

    report = explore(body)
    assert report.iterations > 1
    assert completed == ["late"] * (2 * report.iterations)


def test_exception_in_an_unjoined_thread_fails_the_run() -> None:
    def body() -> None:
        def crash() -> None:
            raise Boom("nobody joined me")

        thread.spawn(crash, name="orphan")

    with pytest.raises(concurrency.ScheduleFailure) as caught:
        concurrency.check(body, "dfs")
    failure = caught.value
    assert failure.kind == "exception"
    assert "Boom in thread orphan: nobody joined me" in str(failure)
    assert isinstance(failure.error, Boom)


def test_exception_in_a_joined_thread_goes_to_the_joiner_only() -> None:
    def body() -> None:
        def crash() -> None:
            raise Boom("caught by the joiner")

        handle = thread.spawn(crash)
        with pytest.raises(Boom):
            handle.join()

    explore(body)


def test_exception_in_the_body_fails_the_run() -> None:
    def body() -> None:
        raise Boom("in the body")

    with pytest.raises(concurrency.ScheduleFailure, match=r"^Boom in thread main: in the body"):
        concurrency.check(body, "random", iterations=3)


def test_a_model_object_used_after_its_execution_gets_a_clear_error() -> None:
    kept: list[Any] = []

    def body() -> None:
        kept.append(sync.Mutex(0))

    explore(body)
    with pytest.raises(RuntimeError, match="Mutex#1 belongs to a model execution that has ended"):
        kept[0].lock()


LEAK_SCRIPT = """
import concurrency
from concurrency import sync

cache = []

def body():
    if not cache:
        cache.append(sync.Mutex(0))  # created in the first execution, kept for later ones
    with cache[0].lock() as guard:
        guard.value += 1

try:
    concurrency.check(body, "random", iterations=3)
except concurrency.ScheduleFailure as failure:
    print("iteration", failure.iteration, failure.kind, failure.error)
"""


def test_a_model_object_reused_in_a_later_execution_fails_that_execution() -> None:
    """Run in a child process: this once made `check` spin forever."""
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-c", LEAK_SCRIPT], capture_output=True,
                              text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("check() hung when a model object outlived its execution")
    assert done.returncode == 0, done.stderr
    assert "iteration 2 exception Mutex#1 belongs to a model execution that has ended" in (
        done.stdout
    )
