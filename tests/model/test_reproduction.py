"""Every failure is replayed before it is reported; one that does not recur is the test's
nondeterminism, and a replay that leaves its schedule says where."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.sync import atomic


def lost_update() -> None:
    counter = atomic.AtomicInt()

    def increment() -> None:
        seen = counter.load()
        counter.store(seen + 1)

    with thread.scope() as scope:
        scope.spawn(increment)
        scope.spawn(increment)
    assert counter.load() == 2, "an update was lost"


def test_a_deterministic_failure_says_it_reproduced_3_of_3() -> None:
    for strategy in ("random", "pct", "dfs"):
        with pytest.raises(concurrency.ScheduleFailure) as found:
            concurrency.check(lost_update, strategy)
        assert "reproduced: 3/3" in str(found.value), strategy
        assert found.value.kind == "exception"


_executions = itertools.count()


def fails_on_some_executions() -> None:
    """Fails on one execution in five, whatever the schedule: state kept between executions."""
    counter = atomic.AtomicInt()
    with thread.scope() as scope:
        scope.spawn(counter.fetch_add, 1)
        scope.spawn(counter.fetch_add, 1)
    assert next(_executions) % 5 != 3, "failed on a global count, not on the schedule"


def test_a_failure_that_does_not_recur_is_reported_as_nondeterminism() -> None:
    with pytest.raises(concurrency.ScheduleFailure) as found:
        concurrency.check(fails_on_some_executions, "random", seed=1)
    failure = found.value
    message = str(failure)
    assert failure.kind == "nondeterministic"
    assert "NOT REPRODUCED" in message and "The test is not deterministic" in message
    assert "state kept between executions" in message  # the likely causes are named
    assert "failed on a global count" in message  # what was seen is still shown
    assert "reproduced: " in message


_flaky_runs = itertools.count()


def fails_every_other_execution_after_a_schedule() -> None:
    """A real ordering bug that also needs a coin flip kept between executions."""
    first = atomic.AtomicInt(0)

    def claim(me: int) -> None:
        first.compare_exchange(0, me)

    with thread.scope() as scope:
        scope.spawn(claim, 1)
        scope.spawn(claim, 2)
    flip = next(_flaky_runs) % 2
    assert not (first.load() == 2 and flip), "thread 2 won on an odd run"


def test_a_failure_that_recurs_only_sometimes_is_reported_as_flaky() -> None:
    with pytest.raises(concurrency.ScheduleFailure) as found:
        concurrency.check(fails_every_other_execution_after_a_schedule, "dfs")
    message = str(found.value)
    assert found.value.kind == "exception"
    reproduced = message.split("reproduced: ", 1)[1].split("\n", 1)[0]
    hits, tries = (int(part) for part in reproduced.split("/"))
    assert tries == 3 and 1 <= hits <= 2, reproduced
    assert "flaky" in message and "not fully deterministic" in message


_choice = {"workers": 2}


def spawns_a_varying_number_of_threads() -> None:
    counter = atomic.AtomicInt()

    def increment() -> None:
        seen = counter.load()
        counter.store(seen + 1)

    with thread.scope() as scope:
        for _ in range(_choice["workers"]):
            scope.spawn(increment)
    assert counter.load() == _choice["workers"]


def test_a_replay_that_leaves_its_schedule_names_the_first_diverging_decision() -> None:
    _choice["workers"] = 2
    with pytest.raises(concurrency.ScheduleFailure) as found:
        concurrency.check(spawns_a_varying_number_of_threads, "dfs")
    _choice["workers"] = 3
    try:
        with pytest.raises(concurrency.ReplayDivergence) as diverged:
            concurrency.replay(spawns_a_varying_number_of_threads, found.value.replay)
    finally:
        _choice["workers"] = 2
    error = diverged.value
    assert isinstance(error, AssertionError)
    assert error.decision is not None
    assert f"at decision {error.decision}" in str(error)
    assert "could run" in error.recorded and "could run" in error.replayed
    assert "Something the test reads besides the schedule differs" in str(error)


HASH_ORDER_TEST = textwrap.dedent('''
    import sys
    import concurrency
    from concurrency import thread
    from concurrency.sync import atomic

    def hash_ordered() -> None:
        """Spawns in the iteration order of a set of strings: it changes with PYTHONHASHSEED."""
        log = atomic.AtomicInt()

        def work(bit: int) -> None:
            seen = log.load()
            log.store(seen * 4 + bit)

        with thread.scope() as scope:
            for name in {"alpha", "beta", "gamma", "delta"}:
                scope.spawn(work, len(name) % 4)
        assert log.load() != 0, "impossible"
        assert log.load() < 4 ** 4 - 40, "the log is too large"

    if __name__ == "__main__":
        command, token = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
        if command == "find":
            try:
                concurrency.check(hash_ordered, "random", iterations=2000, seed=3)
            except concurrency.ScheduleFailure as failure:
                print(failure.replay)
        else:
            try:
                concurrency.replay(hash_ordered, token)
            except concurrency.ScheduleFailure:
                print("REPRODUCED")
            except concurrency.ReplayDivergence:
                print("DIVERGED")
            else:
                print("PASSED")
''')


def test_replay_in_other_processes_never_reports_a_pass(tmp_path: Path) -> None:
    """The issue's case: a failure hanging on set order must not replay as "no failure"."""
    script = tmp_path / "hash_order.py"
    script.write_text(HASH_ORDER_TEST)
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    found = subprocess.run([sys.executable, str(script), "find"], capture_output=True, text=True,
                           env=env, timeout=300, cwd=tmp_path)
    token = found.stdout.strip()
    assert token.startswith("cc2-"), found.stdout + found.stderr
    outcomes = set()
    for seed in range(2, 10):
        done = subprocess.run([sys.executable, str(script), "replay", token], capture_output=True,
                              text=True, env={**env, "PYTHONHASHSEED": str(seed)}, timeout=300,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        outcomes.add(done.stdout.strip())
    assert "PASSED" not in outcomes
    assert outcomes <= {"REPRODUCED", "DIVERGED"}


def test_a_mutex_example_reproduces() -> None:
    def deadlock() -> None:
        a, b = sync.Mutex(name="a"), sync.Mutex(name="b")

        def one() -> None:
            with a.lock(), b.lock():
                pass

        def two() -> None:
            with b.lock(), a.lock():
                pass

        with thread.scope() as scope:
            scope.spawn(one)
            scope.spawn(two)

    with pytest.raises(concurrency.ScheduleFailure) as found:
        concurrency.check(deadlock, "dfs")
    assert found.value.kind == "deadlock"
    assert "reproduced: 3/3" in str(found.value)
