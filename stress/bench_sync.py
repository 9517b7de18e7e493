"""Benchmark the real-thread Mutex and RwLock against the standard library and
`readerwriterlock`, all measured in this one process.

    python stress/bench_sync.py [--repeat N] [--scale X] [--quick]

Backend objects are built directly (`fast.Mutex(0)`, `checked.Mutex(0)`), not
through the facade, which picks one backend per process. Rows and targets:

- uncontended `with m.lock(): pass` against `with threading.Lock(): pass`:
  fast within 1.05x (1.1x on a free-threaded build), the checked `threading`
  backend within 1.5x;
- the same with `g.value += 1` inside, against `with lock: counter += 1` (reported);
- uncontended `with rw.read()` / `with rw.write()` against `with threading.Lock()`:
  within 1.3x; and against `RWLockFair`'s `with rw.gen_rlock()` / `gen_wlock()`
  (its documented usage): at least 4x faster;
- a read-mostly (95% reads, 5% writes) run on 4 threads doing the same total
  number of operations: fast RwLock against RWLockFair, in operations per second;
- scaling, in operations per second: 2 threads each on its own Mutex against 1
  thread (at least 1.8x on a free-threaded build, where they run in parallel),
  and the 95/5 RwLock run on 2 threads against 1 (at least 1.5x free-threaded).
  With the GIL the threads take turns, so these rows are for information.

Which implementation runs (the native core, or pure Python) is printed first.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from _bench import (
    Row,
    Settings,
    best_wall_times,
    cost_row,
    ns_per_op,
    parse_settings,
    print_table,
    run_threads,
    speed_row,
)
from readerwriterlock.rwlock import RWLockFair

from concurrency.backends import fast
from concurrency.backends.native import CORE

# `from concurrency.backends import threading` would hand back the standard library's
# module (the package imports it under that name) unless the submodule was loaded.
checked = importlib.import_module("concurrency.backends.threading")

UNCONTENDED_LOOPS = 50_000  # per round
CONTENDED_OPS = 100_000  # per round, in total, split over the threads
CONTENDED_THREADS = 4
FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()
WRITE_EVERY = 20  # one operation in 20 writes: 95% reads


def _uncontended(settings: Settings, stmts: dict[str, str],
                 namespace: dict[str, Any]) -> dict[str, float]:
    return ns_per_op(stmts, namespace, settings.loops(UNCONTENDED_LOOPS), settings.repeat)


def mutex_rows(settings: Settings) -> list[Row]:
    namespace: dict[str, Any] = {
        "lock": threading.Lock(),
        "counter": 0,
        "fast_m": fast.Mutex(0),
        "checked_m": checked.Mutex(0),
    }
    ns = _uncontended(settings, {
        "raw": "with lock: pass",
        "fast": "with fast_m.lock(): pass",
        "checked": "with checked_m.lock(): pass",
        "raw_add": "global counter\nwith lock:\n    counter += 1",
        "fast_add": "with fast_m.lock() as g:\n    g.value += 1",
    }, namespace)
    return [
        cost_row("Mutex lock+unlock (fast)", ns["fast"], ns["raw"], "threading.Lock",
                 1.1 if FREE_THREADED else 1.05),
        cost_row("Mutex lock+unlock (threading)", ns["checked"], ns["raw"], "threading.Lock", 1.5),
        cost_row("Mutex lock, value += 1 (fast)", ns["fast_add"], ns["raw_add"],
                 "Lock, counter += 1", None),
    ]


def rwlock_rows(settings: Settings) -> list[Row]:
    namespace: dict[str, Any] = {
        "lock": threading.Lock(),
        "fair": RWLockFair(),
        "fast_rw": fast.RwLock(0),
        "checked_rw": checked.RwLock(0),
    }
    ns = _uncontended(settings, {
        "fair_read": "with fair.gen_rlock(): pass",
        "fast_read": "with fast_rw.read(): pass",
        "checked_read": "with checked_rw.read(): pass",
        "fair_write": "with fair.gen_wlock(): pass",
        "fast_write": "with fast_rw.write(): pass",
        "checked_write": "with checked_rw.write(): pass",
        "fast_upgradable": "with fast_rw.upgradable_read(): pass",
        "raw": "with lock: pass",
    }, namespace)
    rows = [
        cost_row("RwLock read (fast)", ns["fast_read"], ns["raw"], "threading.Lock", 1.3),
        cost_row("RwLock write (fast)", ns["fast_write"], ns["raw"], "threading.Lock", 1.3),
    ]
    for label, target in (("fast", 4.0), ("checked", None)):
        backend = "threading" if label == "checked" else label
        rows.append(speed_row(f"RwLock read ({backend})", ns[f"{label}_read"], ns["fair_read"],
                              "RWLockFair rlock", "ns/op", target))
        rows.append(speed_row(f"RwLock write ({backend})", ns[f"{label}_write"],
                              ns["fair_write"], "RWLockFair wlock", "ns/op", target))
    rows.append(speed_row("RwLock upgradable_read (fast)", ns["fast_upgradable"],
                          ns["fair_write"], "RWLockFair wlock", "ns/op", None))
    return rows


# --------------------------------------------------------------------------- contended


def _fast_worker(rw: Any, ops: int) -> Callable[[], None]:
    def work() -> None:
        for i in range(ops):
            if i % WRITE_EVERY:
                with rw.read() as guard:
                    guard.value  # noqa: B018 - the read is the point
            else:
                with rw.write() as guard:
                    guard.value += 1

    return work


def _fair_worker(rw: RWLockFair, box: list[int], ops: int) -> Callable[[], None]:
    def work() -> None:
        for i in range(ops):
            if i % WRITE_EVERY:
                with rw.gen_rlock():
                    box[0]
            else:
                with rw.gen_wlock():
                    box[0] += 1

    return work


def _expected_writes(ops_per_thread: int, threads: int) -> int:
    return threads * len(range(0, ops_per_thread, WRITE_EVERY))


def contended_rows(settings: Settings) -> list[Row]:
    threads = CONTENDED_THREADS
    per_thread = settings.loops(CONTENDED_OPS) // threads
    total = per_thread * threads
    expected = _expected_writes(per_thread, threads)

    def run_fast() -> None:
        rw = fast.RwLock(0)
        run_threads([_fast_worker(rw, per_thread) for _ in range(threads)])
        with rw.read() as guard:
            _check_count("fast RwLock", guard.value, expected)

    def run_fair() -> None:
        rw, box = RWLockFair(), [0]
        run_threads([_fair_worker(rw, box, per_thread) for _ in range(threads)])
        _check_count("RWLockFair", box[0], expected)

    seconds = best_wall_times({"fast": run_fast, "fair": run_fair}, contended_repeat(settings))
    return [
        speed_row(f"RwLock 95/5 read/write, {threads} threads (fast)", total / seconds["fast"],
                  total / seconds["fair"], "RWLockFair", "ops/s", 1.0),
    ]


def _own_mutex_worker(ops: int) -> Callable[[], None]:
    def work() -> None:
        mutex = fast.Mutex(0)
        for _ in range(ops):
            with mutex.lock() as guard:
                guard.value += 1

    return work


def scaling_rows(settings: Settings) -> list[Row]:
    """Operations per second of 2 threads against 1 doing the same work per thread."""
    ops = settings.loops(CONTENDED_OPS)
    target_mutex, target_rw = (1.8, 1.5) if FREE_THREADED else (None, None)

    def own_mutexes(threads: int) -> Callable[[], None]:
        return lambda: run_threads([_own_mutex_worker(ops) for _ in range(threads)])

    def read_mostly(threads: int) -> Callable[[], None]:
        def run() -> None:
            rw = fast.RwLock(0)
            run_threads([_fast_worker(rw, ops) for _ in range(threads)])
            with rw.read() as guard:
                _check_count("fast RwLock", guard.value, _expected_writes(ops, threads))

        return run

    seconds = best_wall_times({
        "mutex1": own_mutexes(1), "mutex2": own_mutexes(2),
        "rw1": read_mostly(1), "rw2": read_mostly(2),
    }, contended_repeat(settings))
    return [
        speed_row("2 threads, own Mutex each (fast)", 2 * ops / seconds["mutex2"],
                  ops / seconds["mutex1"], "1 thread", "ops/s", target_mutex),
        speed_row("RwLock 95/5, 2 threads (fast)", 2 * ops / seconds["rw2"],
                  ops / seconds["rw1"], "1 thread", "ops/s", target_rw),
    ]


def contended_repeat(settings: Settings) -> int:
    """Thread runs are long and vary less than loops: fewer rounds do."""
    return max(1, (settings.repeat + 1) // 2)


def _check_count(what: str, got: int, expected: int) -> None:
    """A lost update under contention is a bug, not a slow run: say so loudly."""
    if got != expected:
        raise AssertionError(f"{what}: {got} writes recorded, expected {expected}")


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(__doc__.splitlines()[0], argv)
    print(f"primitives: {'native core' if CORE is not None else 'pure Python'}; "
          f"GIL {'disabled' if FREE_THREADED else 'enabled'}")
    print_table("Mutex (uncontended)", mutex_rows(settings), settings)
    print_table("RwLock (uncontended)", rwlock_rows(settings), settings)
    print_table("RwLock (contended, read-mostly)", contended_rows(settings), settings,
                repeat=contended_repeat(settings))
    print_table("Scaling (2 threads against 1)", scaling_rows(settings), settings,
                repeat=contended_repeat(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
