"""Blocking never polls: a thread parked for 2 s uses under 2% of one core.

One thread is parked on each blocking operation at the same time (so the whole
check costs 2 s of wall time, not 2 s per operation). Each parked thread reads
its own CPU clock (`time.thread_time()`) just before and just after its
blocking call; a polling implementation burns CPU in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sync_helpers import real_threads_only, settle

from concurrency import sync, thread

PARK_SECONDS = 2.0
CPU_BUDGET = 0.02 * PARK_SECONDS  # 2% of one core


@dataclass
class Parked:
    """A thread blocked in `call` until `release()` lets it go."""

    call: Callable[[], Any]
    release: Callable[[], Any]


def mutex_lock() -> Parked:
    m = sync.Mutex(0)
    held = m.lock()
    return Parked(lambda: m.lock().unlock(), held.unlock)


def mutex_try_lock_for() -> Parked:
    m = sync.Mutex(0)
    held = m.lock()
    return Parked(lambda: m.try_lock_for(60).unlock(), held.unlock)  # type: ignore[union-attr]


def rwlock_read() -> Parked:
    rw = sync.RwLock(0)
    held = rw.write()
    return Parked(lambda: rw.read().unlock(), held.unlock)


def rwlock_write() -> Parked:
    rw = sync.RwLock(0)
    held = rw.read()
    return Parked(lambda: rw.write().unlock(), held.unlock)


def rwlock_try_write_for() -> Parked:
    rw = sync.RwLock(0)
    held = rw.read()
    return Parked(lambda: rw.try_write_for(60).unlock(), held.unlock)  # type: ignore[union-attr]


def rwlock_upgrade() -> Parked:
    """The upgradable reader is parked in `upgrade()` waiting for a plain reader to leave."""
    rw = sync.RwLock(0)
    held = rw.read()

    def upgrade() -> None:
        upgradable = rw.upgradable_read()
        upgradable.upgrade().unlock()

    return Parked(upgrade, held.unlock)


def _condvar(wait: Callable[[sync.Condvar, sync.MutexGuard[bool]], Any]) -> Parked:
    m = sync.Mutex(False)
    cv = sync.Condvar()

    def wait_for_flag() -> None:
        with m.lock() as guard:
            while not guard.value:
                wait(cv, guard)

    def set_flag() -> None:
        with m.lock() as guard:
            guard.value = True
        cv.notify_all()

    return Parked(wait_for_flag, set_flag)


def condvar_wait() -> Parked:
    return _condvar(lambda cv, guard: cv.wait(guard))


def condvar_wait_timeout() -> Parked:
    return _condvar(lambda cv, guard: cv.wait_timeout(guard, 60))


def recv() -> Parked:
    tx, rx = sync.channel()
    return Parked(rx.recv, lambda: tx.send("go"))


def recv_timeout() -> Parked:
    tx, rx = sync.sync_channel(1)
    return Parked(lambda: rx.recv_timeout(60), lambda: tx.send("go"))


def rendezvous_send() -> Parked:
    tx, rx = sync.sync_channel(0)
    return Parked(lambda: tx.send("go"), rx.recv)


def join() -> Parked:
    gate = threading.Event()
    target = thread.spawn(gate.wait, 60)
    return Parked(target.join, gate.set)


def barrier_wait() -> Parked:
    barrier = sync.Barrier(2)
    return Parked(barrier.wait, barrier.wait)


def semaphore_acquire() -> Parked:
    sem = sync.Semaphore(1)
    held = sem.acquire()
    return Parked(lambda: sem.acquire().unlock(), held.unlock)


def once_lock_waiter() -> Parked:
    """A second `get_or_init` caller waits while the first one's initializer runs."""
    cell = sync.OnceLock()
    gate = threading.Event()
    initializer = thread.spawn(cell.get_or_init, lambda: gate.wait(60))

    def release() -> None:
        gate.set()
        initializer.join(10)

    settle()  # let the initializer claim the cell first
    return Parked(lambda: cell.get_or_init(lambda: "not me"), release)


SCENARIOS = [
    mutex_lock,
    mutex_try_lock_for,
    rwlock_read,
    rwlock_write,
    rwlock_try_write_for,
    rwlock_upgrade,
    condvar_wait,
    condvar_wait_timeout,
    recv,
    recv_timeout,
    rendezvous_send,
    join,
    barrier_wait,
    semaphore_acquire,
    once_lock_waiter,
]


def measure(call: Callable[[], Any]) -> tuple[float, float]:
    """Run the blocking `call`; return (CPU seconds, wall seconds) this thread spent in it."""
    cpu, wall = time.thread_time(), time.monotonic()
    call()
    return time.thread_time() - cpu, time.monotonic() - wall


@real_threads_only
def test_parked_threads_do_not_burn_cpu() -> None:
    parked = {scenario.__name__: scenario() for scenario in SCENARIOS}
    handles = {name: thread.spawn(measure, p.call, name=name) for name, p in parked.items()}
    time.sleep(PARK_SECONDS)
    for p in parked.values():
        p.release()
    usage = {name: handle.join(10) for name, handle in handles.items()}

    not_parked = {n: f"{wall:.2f}s" for n, (_, wall) in usage.items() if wall < PARK_SECONDS * 0.75}
    assert not not_parked, f"these calls did not block as set up: {not_parked}"
    polling = {n: f"{cpu * 1000:.1f}ms" for n, (cpu, _) in usage.items() if cpu >= CPU_BUDGET}
    assert not polling, f"CPU used while parked {PARK_SECONDS}s (budget {CPU_BUDGET * 1000:.0f}ms): {polling}"
