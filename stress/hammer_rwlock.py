"""Hammer one real-thread RwLock from many threads and check its invariants.

    python stress/hammer_rwlock.py [--backend fast|threading] [--threads N]
                                   [--ops N] [--seed N] [--rounds N]

Scenarios, each run `--rounds` times:

- mix: every thread picks operations at random (seeded): read, write,
  try_*, try_*_for with short timeouts, upgradable_read with and without
  upgrade, write then downgrade, and releases early with unlock(). A
  bookkeeping record kept under a separate raw lock checks at every step that
  no reader or upgradable reader is inside together with a writer and that
  upgradable readers are alone among themselves; every write adds 1 to the
  value, so the value at the end must equal the number of writes that got in.
- writer_not_starved: readers keep the lock read-held in overlapping turns
  while a writer asks for it; the writer must get in while they are still
  going (a stream of new readers must not starve a waiting writer).
- token_fifo: two writers that release and at once ask again, and an
  upgradable reader (sometimes upgrading) that must get in 5 times meanwhile:
  neither writer nor the upgradable reader is shut out by the others;
- poison: threads wait in read/write/upgradable_read while a writer crashes;
  every one of them sees PoisonError, and after clear_poison() the lock works.

Exit status 0 when every check held, 1 otherwise. Nothing here measures time:
timeouts only turn a hang into a report.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType
from typing import Any

import _bench  # also puts the checkout on sys.path

from concurrency.sync import PoisonError

JOIN_TIMEOUT = 120.0


class Inside:
    """Who holds the lock right now, kept under its own raw lock; raises on a breach."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.readers = 0
        self.writers = 0
        self.upgradable = 0

    def enter(self, mode: str) -> None:
        with self._lock:
            if mode == "read":
                self.readers += 1
            elif mode == "write":
                self.writers += 1
            else:
                self.upgradable += 1
            self._check(f"entering {mode}")

    def leave(self, mode: str) -> None:
        with self._lock:
            if mode == "read":
                self.readers -= 1
            elif mode == "write":
                self.writers -= 1
            else:
                self.upgradable -= 1

    def _check(self, when: str) -> None:
        if self.writers > 1 or (self.writers and (self.readers or self.upgradable)):
            raise AssertionError(f"{when}: exclusion broken: {self.describe()}")
        if self.upgradable > 1:
            raise AssertionError(f"{when}: two upgradable readers inside: {self.describe()}")

    def describe(self) -> str:
        return f"readers={self.readers} writers={self.writers} upgradable={self.upgradable}"


def run_all(bodies: Sequence[Callable[[], None]], what: str, describe: Callable[[], str]) -> None:
    """Run each body on its own thread; report a hang (with the lock's state) or a failure."""
    errors: list[BaseException] = []

    def wrap(body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(body,), daemon=True) for body in bodies]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        raise AssertionError(f"{what}: {len(stuck)} threads still blocked after "
                             f"{JOIN_TIMEOUT}s: {describe()}")
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------- mix


def _hold(inside: Inside, mode: str, guard: Any, rng: random.Random) -> None:
    inside.enter(mode)
    if rng.random() < 0.1:
        time.sleep(0)  # let another thread run while we hold it
    inside.leave(mode)


def _one_op(rw: Any, inside: Inside, rng: random.Random) -> int:
    """Do one random operation; return the number of writes that got in."""
    roll = rng.random()
    if roll < 0.45:
        with rw.read() as guard:
            _hold(inside, "read", guard, rng)
        return 0
    if roll < 0.60:
        with rw.write() as guard:
            _hold(inside, "write", guard, rng)
            guard.value += 1
        return 1
    if roll < 0.68:
        guard = rw.try_read() if roll < 0.64 else rw.try_read_for(0.0005)
        if guard is not None:
            _hold(inside, "read", guard, rng)
            guard.unlock()
        return 0
    if roll < 0.76:
        guard = rw.try_write() if roll < 0.72 else rw.try_write_for(0.0005)
        if guard is None:
            return 0
        _hold(inside, "write", guard, rng)
        guard.value += 1
        guard.unlock()
        return 1
    if roll < 0.88:
        upgradable = rw.upgradable_read() if roll < 0.84 else rw.try_upgradable_read()
        if upgradable is None:
            return 0
        inside.enter("upgradable")
        if rng.random() < 0.5:
            inside.leave("upgradable")
            upgradable.unlock()
            return 0
        inside.leave("upgradable")  # upgrade() waits for readers, not for itself
        with upgradable.upgrade() as guard:
            _hold(inside, "write", guard, rng)
            guard.value += 1
        return 1
    return _downgrading_op(rw, inside, rng)


def _downgrading_op(rw: Any, inside: Inside, rng: random.Random) -> int:
    """Write, then downgrade to a read guard without letting a writer in between."""
    guard = rw.write()
    inside.enter("write")
    guard.value += 1
    inside.leave("write")
    reader = guard.downgrade()
    _hold(inside, "read", reader, rng)
    reader.unlock()
    return 1


def scenario_mix(module: ModuleType, threads: int, ops: int, seed: int) -> str:
    rw = module.RwLock(0, name="hammered")
    inside = Inside()
    writes = [0] * threads

    def worker(index: int) -> Callable[[], None]:
        rng = random.Random(seed * 1000 + index)

        def body() -> None:
            for _ in range(ops):
                writes[index] += _one_op(rw, inside, rng)

        return body

    run_all([worker(i) for i in range(threads)], "mix", lambda: f"{rw!r} {inside.describe()}")
    with rw.read() as guard:
        value = guard.value
    if value != sum(writes):
        raise AssertionError(f"mix: value {value} but {sum(writes)} writes got in (lost update)")
    if inside.readers or inside.writers or inside.upgradable:
        raise AssertionError(f"mix: bookkeeping not back to zero: {inside.describe()}")
    for method in ("try_write", "try_upgradable_read"):
        leftover = getattr(rw, method)()
        if leftover is None:
            raise AssertionError(f"mix: {method}() failed on an idle lock: {rw!r}")
        leftover.unlock()
    return f"{sum(writes)} writes among {threads * ops} operations"


# --------------------------------------------------------------------------- starvation


def scenario_writer_not_starved(module: ModuleType, threads: int, seed: int) -> str:
    rw = module.RwLock(0, name="read-heavy")
    stop = threading.Event()
    readers = max(2, threads - 1)
    reads_after = [0]

    def reader() -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            with rw.read():
                time.sleep(rng.random() * 0.002)  # overlapping turns: never all out at once

    def writer() -> None:
        time.sleep(0.05)  # let the readers get going
        with rw.write() as guard:
            guard.value = "written"
        with rw.read() as guard:
            reads_after[0] = 1 if guard.value == "written" else 0
        stop.set()

    run_all([reader] * readers + [writer], "writer_not_starved", lambda: repr(rw))
    if not reads_after[0]:
        raise AssertionError("writer_not_starved: the write did not stick")
    return f"a writer got in past {readers} overlapping readers"


def scenario_token_fifo(module: ModuleType, seed: int) -> str:
    """Writers that release and at once ask again must not shut out the others."""
    rw = module.RwLock(0, name="taking-turns")
    stop = threading.Event()
    turns = [0, 0]
    upgradable_turns = [0]
    rng = random.Random(seed)

    def writer(index: int) -> Callable[[], None]:
        def body() -> None:
            while not stop.is_set():
                with rw.write():
                    turns[index] += 1
                    time.sleep(rng.random() * 0.001)

        return body

    def upgradable_reader() -> None:
        time.sleep(0.01)  # let the writers get going
        for _ in range(5):
            with rw.upgradable_read() as guard:
                upgradable_turns[0] += 1
                if rng.random() < 0.5:
                    with guard.upgrade() as written:
                        written.value += 1
        stop.set()

    run_all([writer(0), writer(1), upgradable_reader], "token_fifo", lambda: repr(rw))
    if upgradable_turns[0] != 5 or not all(turns):
        raise AssertionError(f"token_fifo: writer turns {turns}, upgradable {upgradable_turns}")
    return f"2 looping writers ({turns[0]}/{turns[1]} turns) let an upgradable reader in 5 times"


# --------------------------------------------------------------------------- poison


def scenario_poison(module: ModuleType, threads: int) -> str:
    rw = module.RwLock("intact", name="poisoned")
    holding = threading.Event()
    outcomes: list[str] = []
    record = threading.Lock()
    kinds = ("read", "write", "upgradable_read")

    def crasher() -> None:
        try:
            with rw.write() as guard:
                guard.value = "torn"
                holding.set()
                time.sleep(0.05)  # let the others queue up behind us
                raise KeyError("crash while holding")
        except KeyError:
            pass

    def waiter(kind: str) -> Callable[[], None]:
        def body() -> None:
            holding.wait()
            try:
                getattr(rw, kind)()
            except PoisonError:
                with record:
                    outcomes.append("poisoned")
            else:
                with record:
                    outcomes.append(f"{kind} got a guard of a poisoned lock")

        return body

    waiters = [waiter(kinds[i % len(kinds)]) for i in range(max(3, threads))]
    run_all([crasher, *waiters], "poison", lambda: repr(rw))
    wrong = [outcome for outcome in outcomes if outcome != "poisoned"]
    if wrong or len(outcomes) != len(waiters):
        raise AssertionError(f"poison: {wrong or outcomes}")
    for kind in ("try_read", "try_write", "try_upgradable_read"):
        try:
            getattr(rw, kind)()
        except PoisonError:
            continue
        raise AssertionError(f"poison: {kind}() on a poisoned lock did not raise")
    rw.clear_poison()
    with rw.write() as guard:
        if guard.value != "torn":
            raise AssertionError(f"poison: value after clear_poison is {guard.value!r}")
        guard.value = "repaired"
    with rw.read() as guard:
        if guard.value != "repaired":
            raise AssertionError("poison: the lock does not work after clear_poison")
    return f"{len(waiters)} waiters saw PoisonError; clear_poison() recovered"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _bench.add_hammer_options(parser, rounds=3)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--ops", type=int, default=20_000, help="operations per thread")
    args = parser.parse_args(argv)
    if args.threads < 2 or args.ops < 1 or args.rounds < 1:
        parser.error("--threads must be >= 2, --ops and --rounds >= 1")

    def scenarios(module: ModuleType, seed: int) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("mix", partial(scenario_mix, module, args.threads, args.ops, seed)),
            ("writer_not_starved", partial(scenario_writer_not_starved, module, args.threads, seed)),
            ("token_fifo", partial(scenario_token_fifo, module, seed)),
            ("poison", partial(scenario_poison, module, args.threads)),
        ]

    return _bench.run_hammer("hammer_rwlock", args, scenarios)

if __name__ == "__main__":
    sys.exit(main())
