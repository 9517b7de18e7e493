"""An interrupt fuzzer: KeyboardInterrupt at random moments inside every primitive.

A *scenario* runs worker threads (the main thread among them) that use one
primitive over and over, while a shooter thread delivers `KeyboardInterrupt`
at random moments: `PyThreadState_SetAsyncExc` for the workers, a real
`SIGINT` (`signal.pthread_kill`) for the main thread, which also interrupts
its blocking waits. When the shots are spent, the workers stop and the
scenario checks the primitive's invariants: lock free and usable, counts and
permits conserved, every message delivered at most once and every message
whose `send` returned delivered, barrier generations intact, `Condvar.wait*`
always back holding the mutex.

How the witnesses stay honest: an asynchronous exception is only raised where
the interpreter checks for it (after a call returns, at a function's start, at
a backward jump), so each worker marks its presence in its own slot of a
shared list with plain stores and clears it in a `finally`, with no call in
between that could let an interrupt in before the `try`. A shot is fired
only at a thread that armed itself (inside its `try`), and disarms it, so
every interrupt lands inside the worker's `try` and is counted.

Used by `tests/test_interrupt_fuzzer.py` (bounded, fixed seed) and by
`stress/fuzz_interrupts.py` (long runs).
"""

from __future__ import annotations

import ctypes
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from concurrency import sync
from concurrency.sync import BrokenBarrierError, Disconnected, Empty, PoisonError

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int

WAIT = 20.0  # generous bound on anything that must finish once the shooting stops


def _checkpoint() -> None:
    """A Python call: the interpreter checks for a pending interrupt on entering it."""


@dataclass
class Worker:
    """One thread taking part in a scenario, and what happened to it."""

    index: int
    ident: int = 0
    is_main: bool = False
    armed: bool = False
    interrupts: int = 0
    operations: int = 0


@dataclass
class Outcome:
    """What one scenario run saw: shots fired, interrupts caught, invariant violations."""

    name: str
    shots: int = 0
    interrupts: int = 0
    operations: int = 0
    violations: list[str] = field(default_factory=list)

    def violated(self, message: str) -> None:
        self.violations.append(message)


class Shooter(threading.Thread):
    """Fires `shots` interrupts, each at a random armed worker after a random pause."""

    def __init__(self, workers: list[Worker], shots: int, rng: random.Random,
                 max_gap: float) -> None:
        super().__init__(name="interrupt-shooter", daemon=True)
        self.workers = workers
        self.shots = shots
        self.rng = rng
        self.max_gap = max_gap
        self.lock = threading.Lock()
        self.fired = 0
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + WAIT * 3
        while self.fired < self.shots and time.monotonic() < deadline:
            time.sleep(self.rng.uniform(0, self.max_gap))
            with self.lock:
                armed = [w for w in self.workers if w.armed]
                if not armed:
                    continue
                target = self.rng.choice(armed)
                target.armed = False  # one shot per arming: it lands inside that `try`
                if target.is_main:
                    signal.pthread_kill(target.ident, signal.SIGINT)
                else:
                    _set_async_exc(target.ident, KeyboardInterrupt)
                self.fired += 1
        self.done.set()

    def arm(self, worker: Worker) -> None:
        with self.lock:
            worker.armed = True

    def disarm(self, worker: Worker) -> None:
        with self.lock:
            worker.armed = False
        _checkpoint()  # a shot fired before the disarm lands here, still inside the `try`


Step = Callable[[Worker], None]


def run_scenario(name: str, steps: list[Step], *, shots: int, seed: int,
                 max_gap: float = 0.002, release: Callable[[], None] = lambda: None,
                 stop: threading.Event | None = None,
                 targets: list[bool] | None = None) -> Outcome:
    """Run `steps[i]` in a loop on worker i (worker 0 is the calling, main thread).

    Only workers whose `targets[i]` is true (all, by default) are interrupted.

    Each step is one use of the primitive; `KeyboardInterrupt` and `PoisonError`
    (a lock poisoned by an interrupt that escaped a `with`, whose steps clear it)
    are counted and the loop goes on. When the shots are spent `stop` is set and
    `release()` unblocks whatever still waits, then every worker is joined.
    """
    rng = random.Random(seed)
    stop = stop or threading.Event()
    outcome = Outcome(name)
    workers = [Worker(i) for i in range(len(steps))]
    workers[0].is_main = True
    workers[0].ident = threading.get_ident()
    shooter = Shooter(workers, shots, rng, max_gap)
    targeted = targets if targets is not None else [True] * len(steps)

    def loop(worker: Worker, step: Step) -> None:
        while not stop.is_set():
            try:
                if targeted[worker.index]:
                    shooter.arm(worker)
                step(worker)
                worker.operations += 1
                shooter.disarm(worker)
            except KeyboardInterrupt:
                worker.interrupts += 1
                shooter.disarm(worker)

    def thread_main(worker: Worker, step: Step) -> None:
        worker.ident = threading.get_ident()
        loop(worker, step)

    threads = [threading.Thread(target=thread_main, args=(w, s), name=f"{name}-{w.index}")
               for w, s in zip(workers[1:], steps[1:], strict=True)]
    with _sigint_raises():
        for t in threads:
            t.start()
        shooter.start()

        def stop_when_done() -> None:
            shooter.done.wait()
            stop.set()
            time.sleep(0.05)  # let the workers see `stop` before waking the stragglers
            release()

        stopper = threading.Thread(target=stop_when_done, name=f"{name}-stopper", daemon=True)
        stopper.start()
        loop(workers[0], steps[0])
        stopper.join(WAIT)
        release()
        for t in threads:
            t.join(WAIT)
            if t.is_alive():
                outcome.violated(f"{t.name} still blocked {WAIT}s after the shooting stopped")
    outcome.shots = shooter.fired
    outcome.interrupts = sum(w.interrupts for w in workers)
    outcome.operations = sum(w.operations for w in workers)
    if outcome.interrupts != outcome.shots:
        outcome.violated(f"{outcome.shots} shots fired but {outcome.interrupts} interrupts caught")
    return outcome


@contextmanager
def _sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread while the scenario runs."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def finishes(fn: Callable[[], Any], timeout: float = WAIT) -> tuple[bool, Any]:
    """Run `fn` on a helper thread: (True, result) if it returned in time, else (False, None)."""
    box: list[Any] = []

    def run() -> None:
        box.append(fn())

    helper = threading.Thread(target=run, daemon=True)
    helper.start()
    helper.join(timeout)
    return (bool(box), box[0] if box else None)


def _acquired_and_released(guard: Any) -> bool:
    """Whether a try_* gave a guard (released here, on the thread that acquired it)."""
    if guard is None:
        return False
    guard.unlock()
    return True


def _others(slots: list[Any], me: int, *kinds: Any) -> bool:
    return any(kind in kinds for j, kind in enumerate(slots) if j != me)


# --------------------------------------------------------------------------- scenarios


def mutex_scenario(shots: int, seed: int, threads: int = 4) -> Outcome:
    """lock/try_lock/try_lock_for/early unlock/dropped guards under interrupts."""
    m = sync.Mutex(0)
    slots: list[int] = [0] * threads
    bad: list[int] = []
    rng = random.Random(seed + 1)

    def hold(worker: Worker, guard: Any) -> None:
        me = worker.index
        slots[me] = 1
        try:
            if _others(slots, me, 1):
                bad.append(me)
            time.sleep(0)
        finally:
            slots[me] = 0

    def step(worker: Worker) -> None:
        kind = rng.randrange(5)
        try:
            if kind == 0:
                with m.lock() as g:
                    hold(worker, g)
            elif kind == 1:
                g = m.try_lock()
                if g is not None:
                    with g:
                        hold(worker, g)
            elif kind == 2:
                g = m.try_lock_for(0.002)
                if g is not None:
                    with g:
                        hold(worker, g)
            elif kind == 3:
                g = m.lock()
                hold(worker, g)
                g.unlock()
            else:
                m.lock().value  # noqa: B018  the guard is dropped at once: released on drop
        except PoisonError:
            m.clear_poison()

    outcome = run_scenario("mutex", [step] * threads, shots=shots, seed=seed)
    if bad:
        outcome.violated(f"mutual exclusion broken {len(bad)} times")
    m.clear_poison()
    if m.is_locked():
        outcome.violated("the Mutex is still locked after every worker stopped")
    ok, locked = finishes(lambda: _acquired_and_released(m.try_lock_for(WAIT)))
    if not ok or not locked:
        outcome.violated("the Mutex cannot be locked again")
    return outcome


def condvar_scenario(shots: int, seed: int, threads: int = 4) -> Outcome:
    """wait/wait_timeout/wait_while always come back holding the mutex."""
    m = sync.Mutex(0)
    cv = sync.Condvar()
    slots: list[int] = [0] * threads
    bad: list[str] = []
    rng = random.Random(seed + 2)

    def check_holding(worker: Worker) -> None:
        me = worker.index
        slots[me] = 1
        try:
            if _others(slots, me, 1) or not m.is_locked():
                bad.append(f"worker {me} not holding the mutex after a wait")
            time.sleep(0)
        finally:
            slots[me] = 0

    def waiter(worker: Worker) -> None:
        kind = rng.randrange(3)
        try:
            with m.lock() as g:
                try:
                    if kind == 0:
                        cv.wait_timeout(g, 0.005)
                    elif kind == 1:
                        cv.wait_timeout_while(g, 0.005, lambda v: v % 2 == 0)
                    else:
                        cv.wait(g)
                finally:
                    check_holding(worker)
        except PoisonError:
            m.clear_poison()

    def notifier(worker: Worker) -> None:
        try:
            with m.lock() as g:
                g.value += 1
                cv.notify_one() if g.value % 3 else cv.notify_all()
        except PoisonError:
            m.clear_poison()
        time.sleep(0.0005)

    def release() -> None:
        for _ in range(3):
            cv.notify_all()
            time.sleep(0.01)

    steps: list[Step] = [waiter] * (threads - 1) + [notifier]
    stop = threading.Event()

    def release_until_stopped() -> None:
        release()

    outcome = run_scenario("condvar", steps, shots=shots, seed=seed, stop=stop,
                           release=release_until_stopped)
    if bad:
        outcome.violated(f"{len(bad)} waits returned without the mutex: {bad[:3]}")
    m.clear_poison()
    if m.is_locked():
        outcome.violated("the Mutex is still locked after every worker stopped")
    return outcome


def rwlock_scenario(shots: int, seed: int, threads: int = 5) -> Outcome:
    """read/write/upgradable/upgrade/downgrade/try_* under interrupts."""
    rw = sync.RwLock(0)
    slots: list[str] = [""] * threads
    bad: list[str] = []
    rng = random.Random(seed + 3)

    def inside(worker: Worker, kind: str, excluded: tuple[str, ...]) -> None:
        me = worker.index
        slots[me] = kind
        try:
            if _others(slots, me, *excluded):
                bad.append(f"{kind} overlapped {[s for s in slots if s]}")
            time.sleep(0)
        finally:
            slots[me] = ""

    def step(worker: Worker) -> None:
        kind = rng.randrange(7)
        try:
            if kind == 0:
                with rw.read():
                    inside(worker, "r", ("w",))
            elif kind == 1:
                with rw.write():
                    inside(worker, "w", ("r", "w", "u"))
            elif kind == 2:
                with rw.upgradable_read() as u:
                    inside(worker, "u", ("w", "u"))
                    with u.upgrade():
                        inside(worker, "w", ("r", "w", "u"))
            elif kind == 3:
                with rw.write() as w:
                    inside(worker, "w", ("r", "w", "u"))
                    with w.downgrade():
                        inside(worker, "r", ("w",))
            elif kind == 4:
                g = rw.try_write_for(0.002)
                if g is not None:
                    with g:
                        inside(worker, "w", ("r", "w", "u"))
            elif kind == 5:
                g = rw.try_read_for(0.002)
                if g is not None:
                    with g:
                        inside(worker, "r", ("w",))
            else:
                rw.read().value  # noqa: B018  dropped at once: released on drop
        except PoisonError:
            rw.clear_poison()

    outcome = run_scenario("rwlock", [step] * threads, shots=shots, seed=seed)
    if bad:
        outcome.violated(f"exclusion broken {len(bad)} times: {bad[:3]}")
    rw.clear_poison()
    ok, locked = finishes(lambda: _acquired_and_released(rw.try_write_for(WAIT)))
    if not ok or not locked:
        outcome.violated("the RwLock cannot be write-locked again (a reader or writer leaked)")
    return outcome


def semaphore_scenario(shots: int, seed: int, threads: int = 5, permits: int = 2) -> Outcome:
    """acquire/try_acquire/try_acquire_for/dropped guards: permits conserved."""
    sem = sync.Semaphore(permits)
    slots: list[int] = [0] * threads
    bad: list[int] = []
    rng = random.Random(seed + 4)

    def hold(worker: Worker) -> None:
        me = worker.index
        slots[me] = 1
        try:
            if sum(slots) > permits:
                bad.append(sum(slots))
            time.sleep(0)
        finally:
            slots[me] = 0

    def step(worker: Worker) -> None:
        kind = rng.randrange(4)
        if kind == 0:
            with sem.acquire():
                hold(worker)
        elif kind == 1:
            g = sem.try_acquire()
            if g is not None:
                with g:
                    hold(worker)
        elif kind == 2:
            g = sem.try_acquire_for(0.002)
            if g is not None:
                with g:
                    hold(worker)
        else:
            sem.acquire()  # dropped at once: the permit goes back on drop

    outcome = run_scenario("semaphore", [step] * threads, shots=shots, seed=seed)
    if bad:
        outcome.violated(f"more than {permits} holders {len(bad)} times")
    _, available = finishes(lambda: _settled(sem.available, permits))
    if available != permits:
        outcome.violated(f"{available} of {permits} permits available after every worker stopped")
    return outcome


def _settled(read: Callable[[], Any], expected: Any, timeout: float = 2.0) -> Any:
    """`read()` once it equals `expected`, or its last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.01)
        value = read()
    return value


def channel_scenario(shots: int, seed: int, bound: int | None, producers: int = 2,
                     consumers: int = 2, interrupt_consumers: bool = True) -> Outcome:
    """send/recv/try_recv/recv_timeout: nothing duplicated, every returned send delivered.

    A consumer interrupted just after `recv` returned loses the message it took
    (the interpreter drops the call's result): the check allows at most one lost
    message per consumer interrupt, and none when only producers are interrupted.
    """
    tx, rx = sync.sync_channel(bound) if bound is not None else sync.channel()
    spare = tx.clone()
    delivered_ok: list[Any] = []
    received: list[Any] = []
    serials = [0] * (producers + consumers)
    consumer_interrupts = [0]
    stop = threading.Event()
    rng = random.Random(seed + 5)

    def produce(worker: Worker) -> None:
        serials[worker.index] += 1
        message = (worker.index, serials[worker.index])
        try:
            tx.send(message)
        except Disconnected:
            return
        delivered_ok.append(message)

    def consume(worker: Worker) -> None:
        kind = rng.randrange(3)
        try:
            try:
                if kind == 0:
                    message = rx.recv_timeout(0.005)
                elif kind == 1:
                    message = rx.try_recv()
                else:
                    message = rx.recv_timeout(0.05)  # long enough to be interrupted parked
            except (Empty, TimeoutError, Disconnected):
                return
            received.append(message)
        except KeyboardInterrupt:
            consumer_interrupts[0] += 1
            raise

    # Worker 0 (the main thread, the one SIGINT reaches in its blocking waits) consumes
    # when consumers are shot at, else produces.
    steps: list[Step] = [consume] * consumers + [produce] * producers
    targets = [True] * len(steps)
    if not interrupt_consumers:
        steps = [produce] * producers + [consume] * consumers
        targets = [True] * producers + [False] * consumers

    def release() -> None:
        tx.close()  # a producer still blocked in send raises Disconnected

    name = f"channel(bound={bound})"
    outcome = run_scenario(name, steps, shots=shots, seed=seed, stop=stop, release=release,
                           targets=targets)
    while True:
        try:
            received.append(rx.try_recv())
        except (Empty, Disconnected):
            break
    _check_delivery(outcome, delivered_ok, received,
                    consumer_interrupts[0] if interrupt_consumers else 0)
    if bound:
        ok, _ = finishes(lambda: [spare.send(("spare", i)) for i in range(bound)], timeout=5.0)
        if not ok:
            outcome.violated(f"a slot of the bound-{bound} channel leaked: it no longer takes "
                             f"{bound} messages when empty")
    spare.close()
    return outcome


def _check_delivery(outcome: Outcome, delivered_ok: list[Any], received: list[Any],
                    allowed_losses: int) -> None:
    seen = set(received)
    if len(seen) != len(received):
        outcome.violated(f"{len(received) - len(seen)} messages received twice")
    lost = [m for m in delivered_ok if m not in seen]
    if len(lost) > allowed_losses:
        outcome.violated(f"{len(lost)} messages whose send returned were never received "
                         f"(at most {allowed_losses} explained by consumer interrupts): {lost[:5]}")


def barrier_scenario(shots: int, seed: int, parties: int = 4) -> Outcome:
    """Barrier.wait under interrupts: no party leaked, a clean round works afterwards."""
    barrier = sync.Barrier(parties)
    leaders: list[int] = []
    stop = threading.Event()

    def step(worker: Worker) -> None:
        try:
            if barrier.wait().is_leader:
                leaders.append(worker.index)
        except BrokenBarrierError:
            # An interrupted party (or a timeout) broke the round for everyone: start over.
            if not stop.is_set():
                barrier.reset()
            time.sleep(0.001)

    def release() -> None:
        barrier.abort()

    outcome = run_scenario("barrier", [step] * parties, shots=shots, seed=seed, release=release,
                           stop=stop)
    barrier.reset()
    if barrier.n_waiting != 0:
        outcome.violated(f"{barrier.n_waiting} parties still counted as waiting after reset")
    results: list[bool] = []
    lock = threading.Lock()

    def one() -> None:
        result = barrier.wait(timeout=WAIT)
        with lock:
            results.append(result.is_leader)

    threads = [threading.Thread(target=one) for _ in range(parties)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    if len(results) != parties or results.count(True) != 1:
        outcome.violated(f"a clean round after the fuzzing gave {results} (one leader expected)")
    return outcome


def oncelock_scenario(shots: int, seed: int, threads: int = 4, cells: int = 50) -> Outcome:
    """get_or_init under interrupts: one value per cell, never stuck."""
    cell_list = [sync.OnceLock() for _ in range(cells)]
    results: list[dict[int, Any]] = [{} for _ in range(cells)]
    positions = [0] * threads
    rng = random.Random(seed + 6)

    def step(worker: Worker) -> None:
        time.sleep(0)  # initialised cells return at once: let the shooter have the GIL
        index = positions[worker.index] % cells
        positions[worker.index] += 1
        cell = cell_list[index]

        def init() -> Any:
            time.sleep(rng.uniform(0, 0.001))
            if rng.random() < 0.2:
                raise ValueError("initializer failed")
            return (worker.index, index)

        try:
            value = cell.get_or_init(init)
        except ValueError:
            return
        results[index][worker.index] = value

    outcome = run_scenario("oncelock", [step] * threads, shots=shots, seed=seed)
    for index, cell in enumerate(cell_list):
        values = set(results[index].values())
        current = cell.get()
        if current is not None:
            values.add(current)
        if len(values) > 1:
            outcome.violated(f"cell {index} handed out {len(values)} different values: {values}")
        ok, final = finishes(lambda cell=cell: cell.get_or_init(lambda: "final"), timeout=5.0)
        if not ok:
            outcome.violated(f"cell {index} is stuck: get_or_init never returns")
        elif current is not None and final != current:
            outcome.violated(f"cell {index} changed value from {current!r} to {final!r}")
    return outcome


SCENARIOS: dict[str, Callable[[int, int], Outcome]] = {
    "mutex": mutex_scenario,
    "condvar": condvar_scenario,
    "rwlock": rwlock_scenario,
    "semaphore": semaphore_scenario,
    "channel-unbounded": lambda shots, seed: channel_scenario(shots, seed, None),
    "channel-bounded": lambda shots, seed: channel_scenario(shots, seed, 2),
    "channel-rendezvous": lambda shots, seed: channel_scenario(shots, seed, 0),
    "channel-producers-only": lambda shots, seed: channel_scenario(
        shots, seed, 1, interrupt_consumers=False),
    "barrier": barrier_scenario,
    "oncelock": oncelock_scenario,
}
