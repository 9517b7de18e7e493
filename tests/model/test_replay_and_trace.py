"""Failures, their reports, swimlane traces, shrinking, replay tokens.

A failure is a `ScheduleFailure` (an `AssertionError`) whose message carries
the strategy, the seed, the trace of the failing interleaving and how to
replay it; its `.replay` token re-runs exactly that interleaving, and nothing
else: a damaged token, a token of another test or a test that no longer takes
the same path are refused with a clear error.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import concurrency
import concurrency.backends.model.api as model_api
from concurrency import sync, thread
from concurrency.backends.model.scheduler import ReplayDivergence
from concurrency.backends.model.token import TokenError
from concurrency.sync import atomic

FILE = Path(__file__).name
SOURCE = Path(__file__).read_text().splitlines()


def line_of(marker: str) -> int:
    """The 1-based line of this file that ends with the comment `# <marker>`."""
    hits = [n for n, text in enumerate(SOURCE, 1) if text.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return hits[0]


def where(marker: str) -> str:
    return f"{FILE}:{line_of(marker)}"


def failure_of(fn: Callable[[], None], strategy: str = "random", **options: int) -> (
        concurrency.ScheduleFailure):
    """The ScheduleFailure that checking `fn` raises (the test fails if none is raised)."""
    with pytest.raises(concurrency.ScheduleFailure) as caught:
        concurrency.check(fn, strategy, **options)
    return caught.value


def preemptions_of(failure: BaseException) -> int:
    found = re.search(r"Trace \(\d+ steps?, (\d+) preemptions?, ", str(failure))
    assert found, "the message states how many preemptions the trace has"
    return int(found.group(1))


# --------------------------------------------------------------------------- failing bodies


def lost_update() -> None:
    """Two threads read and then write a locked counter in two critical sections."""
    counter = sync.Mutex(0, name="counter")

    def increment() -> None:
        with counter.lock() as guard:  # read-step
            seen = guard.value
        with counter.lock() as guard:  # write-step
            guard.value = seen + 1

    with thread.scope() as s:
        s.spawn(increment, name="alice")
        s.spawn(increment, name="bob")
    assert counter.lock().value == 2, "an increment was lost"


def crossed_locks() -> None:
    a = sync.Mutex(name="A")
    b = sync.Mutex(name="B")

    def left() -> None:
        with a.lock(), b.lock():  # left-waits
            pass

    def right() -> None:
        with b.lock(), a.lock():  # right-waits
            pass

    with thread.scope() as s:  # main-waits
        s.spawn(left, name="left")
        s.spawn(right, name="right")


def forgotten_notify() -> None:
    state = sync.Mutex(False)
    ready = sync.Condvar(name="ready")
    _tx, rx = sync.channel(name="jobs")  # the sender stays open: recv waits forever

    def waiter() -> None:
        with state.lock() as guard:
            while not guard.value:
                ready.wait(guard)  # waiter-waits

    thread.spawn(waiter, name="waiter")
    rx.recv()  # main-recv


def poisoned_body() -> None:
    ledger = sync.Mutex(0, name="ledger")

    def crash() -> None:
        with ledger.lock():
            raise KeyError("half-written")

    handle = thread.spawn(crash)
    try:
        handle.join()
    except KeyError:
        pass
    ledger.lock()


def livelock() -> None:
    stop = atomic.AtomicBool(name="stop")

    def spin() -> None:
        while not stop.load():
            thread.yield_now()

    thread.spawn(spin, name="spinner")


FAILING = {
    "exception": lost_update,
    "deadlock": crossed_locks,
    "poisoned": poisoned_body,
    "max_steps": livelock,
}


# --------------------------------------------------------------------------- reports


@pytest.mark.parametrize("strategy", ["random", "pct", "dfs"])
@pytest.mark.parametrize("kind", sorted(FAILING))
def test_every_failure_kind_is_reported_with_replay_instructions(kind: str, strategy: str) -> None:
    failure = failure_of(FAILING[kind], strategy, iterations=2000, max_steps=200, seed=4)
    message = str(failure)
    assert failure.kind == kind
    assert failure.strategy == strategy
    assert failure.iteration >= 1
    assert f"execution:  {failure.iteration} of at most 2000" in message
    if strategy == "dfs":
        assert failure.seed is None and "strategy:   dfs (exhaustive)" in message
    else:
        assert failure.seed == 4 and f"strategy:   {strategy} (seed 4" in message
    assert failure.replay.startswith("cc2-")
    assert f"Replay token: {failure.replay}" in message
    assert f"concurrency.replay({FAILING[kind].__name__}, {failure.replay!r})" in message
    assert failure.trace in message
    assert failure.trace.splitlines()[0].startswith("step | main")
    assert isinstance(failure, AssertionError)


def test_exception_failure_names_the_thread_and_chains_the_error() -> None:
    def body() -> None:
        def crash() -> None:
            raise ValueError("bad input")  # crash-line

        thread.spawn(crash, name="parser")

    failure = failure_of(body)
    assert "ValueError in thread parser: bad input" in str(failure)
    assert isinstance(failure.error, ValueError)
    assert f'File "{__file__}", line {line_of("crash-line")}' in str(failure)


def test_deadlock_names_each_blocked_thread_what_it_waits_on_and_where() -> None:
    failure = failure_of(crossed_locks, "dfs")
    message = str(failure)
    assert message.startswith("deadlock: left waits for B held by right; "
                              "right waits for A held by left\n")
    assert "every unfinished thread is blocked:" in message
    assert re.search(rf"left +waits for B held by right +{where('left-waits')}", message)
    assert re.search(rf"right +waits for A held by left +{where('right-waits')}", message)
    assert re.search(rf"main +waits for left to finish +{where('main-waits')}", message)


def test_deadlock_on_a_condvar_and_a_channel() -> None:
    message = str(failure_of(forgotten_notify, "dfs"))
    assert re.search(rf"waiter +waits in ready.wait \(not notified\) +{where('waiter-waits')}",
                     message)
    assert re.search(rf"main +waits to receive on jobs \(empty\) +{where('main-recv')}", message)
    assert "woken" not in message


def test_poisoned_lock_failure() -> None:
    failure = failure_of(poisoned_body, "dfs")
    assert failure.kind == "poisoned"
    assert isinstance(failure.error, sync.PoisonError)
    assert "ledger is poisoned: KeyError" in str(failure)


def test_livelock_exceeds_max_steps() -> None:
    failure = failure_of(livelock, "random", max_steps=50, iterations=3)
    assert failure.kind == "max_steps"
    assert failure.iteration == 1
    assert "more than 50 steps" in str(failure) and "livelock" in str(failure)


def test_long_traces_keep_the_last_steps() -> None:
    failure = failure_of(livelock, "random", max_steps=400, iterations=1)
    first_line = failure.trace.splitlines()[0]
    assert re.fullmatch(r"\(\d+ earlier steps not shown\)", first_line), first_line


# --------------------------------------------------------------------------- the trace


def test_trace_is_a_swimlane_with_one_column_per_thread() -> None:
    failure = failure_of(lost_update, "dfs")
    lines = failure.trace.splitlines()
    header = [cell.strip() for cell in lines[0].split("|")]
    assert header == ["step", "main", "alice", "bob", "at"]
    assert set(lines[1]) == {"-"}
    assert lines[-1].startswith("* = preemption")
    columns = {"main": 1, "alice": 2, "bob": 3}
    locations = {where("read-step"), where("write-step")}
    seen = set()
    number = 0
    for row in lines[2:-1]:
        cells = [cell.strip() for cell in row.split("|")]
        if not cells[0]:
            continue  # a long cell wrapped onto a continuation line
        number += 1
        assert cells[0] == str(number)
        filled = [i for i, cell in enumerate(cells[1:-1], 1) if cell]
        assert len(filled) == 1, f"each step belongs to exactly one thread: {row!r}"
        cell = cells[filled[0]]
        if "lock counter" in cell and filled[0] != columns["main"]:
            location = cells[-1]
            assert location in locations, row
            seen.add((filled[0], location))
    assert seen == {(c, loc) for c in (2, 3) for loc in locations}, "both threads, both steps"


def test_trace_marks_each_preemption_with_a_star() -> None:
    failure = failure_of(lost_update, "random", seed=1)
    stars = sum(1 for row in failure.trace.splitlines()[2:-1] if "| * " in row)
    assert stars == preemptions_of(failure) >= 1


def test_trace_shows_what_atomics_and_try_operations_returned() -> None:
    def body() -> None:
        cell = atomic.AtomicInt(41, name="cell")
        m = sync.Mutex(name="m")
        guard = m.lock()
        thread.spawn(m.try_lock).join()
        guard.unlock()
        cell.fetch_add(1)
        raise RuntimeError("stop here")

    trace = failure_of(body, "dfs").trace
    assert "try_lock m -> None" in trace
    assert "fetch_add cell -> 41" in trace
    assert "exit raised RuntimeError('stop here')" in trace


def test_every_step_of_user_code_shows_its_file_and_line() -> None:
    def body() -> None:
        inventory = sync.Mutex(0, name="the_inventory_lock")
        with inventory.lock():  # long-name
            handle = thread.spawn(lambda: inventory.try_lock_for(1.0))  # timed-out
            assert handle.join() is not None

    trace = failure_of(body, "dfs").trace
    lines = trace.splitlines()
    if f"line = line number in {FILE}" in lines:  # every step in this file: the rows show lines only
        header = [cell.strip() for cell in lines[0].split("|")]
        assert header[-1] == "line"
        shown = {line.rsplit("|", 1)[-1].strip() for line in lines if " | " in line}
        for marker in ("long-name", "timed-out"):
            assert str(line_of(marker)) in shown, trace
    else:
        for marker in ("long-name", "timed-out"):
            assert where(marker) in trace, trace


# --------------------------------------------------------------------------- shrinking


def noisy_lost_update() -> None:
    """A lost update that needs one preemption, between a dozen steps that need none."""
    counter = atomic.AtomicInt()
    noise = atomic.AtomicInt()

    def increment() -> None:
        for _ in range(6):
            noise.fetch_add(1)
        seen = counter.load()
        counter.store(seen + 1)
        for _ in range(6):
            noise.fetch_add(1)

    with thread.scope() as s:
        s.spawn(increment)
        s.spawn(increment)
    assert counter.load() == 2


def test_shrinking_never_adds_preemptions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compare each reported schedule with the first failing one (shrinking switched off)."""
    shrunk = [failure_of(noisy_lost_update, seed=seed) for seed in range(4)]
    monkeypatch.setattr(model_api, "shrink", lambda fn, found, max_steps, seconds: (found, False))
    first = [failure_of(noisy_lost_update, seed=seed) for seed in range(4)]
    for reported, unshrunk in zip(shrunk, first, strict=True):
        assert reported.iteration == unshrunk.iteration
        assert preemptions_of(unshrunk) >= 8, "the random walk preempts often"
        assert preemptions_of(reported) < preemptions_of(unshrunk)
        with pytest.raises(concurrency.ScheduleFailure) as again:
            concurrency.replay(noisy_lost_update, reported.replay)
        assert again.value.trace == reported.trace, "the token is the shrunk schedule"


def test_shrinking_gets_close_to_the_fewest_preemptions() -> None:
    counts = [preemptions_of(failure_of(noisy_lost_update, seed=seed)) for seed in range(4)]
    assert max(counts) <= 2, counts


# --------------------------------------------------------------------------- replay


def test_replay_gives_the_identical_trace_every_time() -> None:
    failure = failure_of(lost_update, "pct", seed=9)
    for _ in range(3):
        with pytest.raises(concurrency.ScheduleFailure) as again:
            concurrency.replay(lost_update, failure.replay)
        replayed = again.value
        assert replayed.trace == failure.trace
        assert (replayed.kind, replayed.replay) == (failure.kind, failure.replay)
        assert replayed.strategy == "replay" and replayed.iteration == 1
        assert "strategy:   replay of a recorded schedule" in str(replayed)


def test_replay_of_a_deadlock() -> None:
    failure = failure_of(crossed_locks, "random", seed=2)
    with pytest.raises(concurrency.ScheduleFailure) as again:
        concurrency.replay(crossed_locks, failure.replay)
    assert again.value.kind == "deadlock"
    assert again.value.trace == failure.trace


def make_counter_check(expected: int) -> Callable[[], None]:
    """The same schedule with a different final assertion (same name: tokens carry over)."""

    def counter_check() -> None:
        counter = atomic.AtomicInt()

        def increment() -> None:
            seen = counter.load()
            counter.store(seen + 1)

        with thread.scope() as s:
            s.spawn(increment)
            s.spawn(increment)
        assert counter.load() >= expected

    return counter_check


def test_replay_of_a_schedule_that_no_longer_fails_is_a_divergence() -> None:
    """The same decisions, no failure: replay says the failure did not recur, never "passed"."""
    failure = failure_of(make_counter_check(2), "dfs")
    with pytest.raises(ReplayDivergence, match="did not recur: it passed") as diverged:
        concurrency.replay(make_counter_check(1), failure.replay)
    assert diverged.value.decision is None
    assert isinstance(diverged.value, AssertionError)
    assert concurrency.ReplayDivergence is ReplayDivergence


def reads_randomness() -> None:
    """A test that wrongly lets real randomness decide how many threads it starts."""
    counter = atomic.AtomicInt()

    def increment() -> None:
        seen = counter.load()
        counter.store(seen + 1)

    workers = 2 if random.random() < 0.5 else 3
    with thread.scope() as s:
        for _ in range(workers):
            s.spawn(increment)
    assert counter.load() == workers


def test_replay_of_a_nondeterministic_test_raises_divergence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(random, "random", lambda: 0.1)
    failure = failure_of(reads_randomness, seed=2)
    monkeypatch.setattr(random, "random", lambda: 0.9)
    with pytest.raises(ReplayDivergence, match="random numbers without a fixed seed") as diverged:
        concurrency.replay(reads_randomness, failure.replay)
    assert diverged.value.decision is not None and diverged.value.decision >= 1
    assert f"decision {diverged.value.decision}" in str(diverged.value)
    monkeypatch.setattr(random, "random", lambda: 0.1)
    with pytest.raises(concurrency.ScheduleFailure):
        concurrency.replay(reads_randomness, failure.replay)


def test_replay_detects_a_different_path_with_the_same_decision_count() -> None:
    state = {"blocked": False}

    def body() -> None:
        gate = sync.Mutex()
        counter = atomic.AtomicInt()

        def increment() -> None:
            seen = counter.load()
            counter.store(seen + 1)

        guard = gate.lock() if state["blocked"] else None
        with thread.scope() as s:
            s.spawn(increment)
            s.spawn(increment)
            if guard is not None:
                guard.unlock()
        assert counter.load() == 2

    failure = failure_of(body, "dfs")
    state["blocked"] = True
    with pytest.raises(ReplayDivergence):
        concurrency.replay(body, failure.replay)


def test_token_of_another_test_is_refused_naming_that_test() -> None:
    token = failure_of(lost_update, "dfs").replay
    with pytest.raises(TokenError, match=r"recorded for model\.test_replay_and_trace\.lost_update, "
                                         r"not model\.test_replay_and_trace\.crossed_locks"):
        concurrency.replay(crossed_locks, token)


def test_damaged_tokens_raise_a_clear_error() -> None:
    token = failure_of(lost_update, "dfs").replay
    for cut in range(len("cc2-") + 1, len(token)):
        with pytest.raises(TokenError, match="damaged"):
            concurrency.replay(lost_update, token[:cut])
    for bad in ("", "hello", token.replace("cc2-", "cc9-"), token + "!!", "cc2-" + "/" * 8):
        with pytest.raises(TokenError, match="replay token"):
            concurrency.replay(lost_update, bad)
    assert issubclass(TokenError, ValueError)


def test_every_single_character_corruption_is_reported_as_damage() -> None:
    """Never a wrong schedule, never blamed on the test: a changed character is damage."""
    token = failure_of(lost_update, "dfs").replay
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index in range(len("cc2-"), len(token)):
        for char in alphabet:
            if char == token[index]:
                continue
            damaged = token[:index] + char + token[index + 1:]
            with pytest.raises(TokenError, match="damaged"):
                concurrency.replay(lost_update, damaged)


def test_a_token_of_an_older_version_says_so() -> None:
    with pytest.raises(TokenError, match="older version"):
        concurrency.replay(lost_update, "cc1-AQIDBAU")


def test_token_survives_surrounding_whitespace() -> None:
    failure = failure_of(lost_update, "dfs")
    with pytest.raises(concurrency.ScheduleFailure) as again:
        concurrency.replay(lost_update, f"  {failure.replay}\n")
    assert again.value.trace == failure.trace


# --------------------------------------------------------------------------- @concurrency.test


def buggy_for_env_replay() -> None:
    lost_update()


def correct_for_env_replay() -> None:
    counter = atomic.AtomicInt()
    with thread.scope() as s:
        s.spawn(counter.fetch_add, 1)
        s.spawn(counter.fetch_add, 1)
    assert counter.load() == 2


def test_concurrency_replay_env_replays_a_decorated_test(monkeypatch: pytest.MonkeyPatch) -> None:
    failure = failure_of(buggy_for_env_replay, "dfs")
    monkeypatch.setenv("CONCURRENCY_REPLAY", failure.replay)
    decorated = concurrency.test(buggy_for_env_replay)
    with pytest.raises(concurrency.ScheduleFailure) as replayed:
        decorated()
    assert replayed.value.strategy == "replay"
    assert replayed.value.trace == failure.trace
    # A token recorded for another test is an error naming that test, not silently ignored.
    with pytest.raises(TokenError, match=r"recorded for model\.test_replay_and_trace\.buggy_for_env"):
        concurrency.test(iterations=2)(correct_for_env_replay)()


def test_concurrency_replay_env_with_a_damaged_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCURRENCY_REPLAY", "cc2-broken")
    with pytest.raises(TokenError):
        concurrency.test(iterations=1)(correct_for_env_replay)()
