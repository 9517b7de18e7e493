"""A failure reads as a story: headline, how it was found, the trace, the details, replay.

- The message's first line (what pytest's summary shows) says what failed and in
  which thread; then the strategy and execution, the trace, the user's traceback
  without the library's frames (or a deadlock's blocked threads), the replay
  command; a two-thread failure stays under 60 lines.
- The trace fits in 100 columns whatever the names and however many threads;
  long cells wrap, nothing is cut; its header counts its rows; every row says
  what happened (`write table (blocks)`, then `write table (acquired)`).
- Two objects created with the same name print as `pool.lock` and `pool.lock#2`.
- An exception is reported in the thread that raised it, also when `join` or
  `thread.scope()` re-raised it in another; only a notified thread is "notified".
- A deadlock names each blocked thread, what it waits for and who holds that.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.backends.model.trace import LEGEND
from concurrency.examples import bank
from concurrency.sync import atomic

FILE = Path(__file__).name
SOURCE = Path(__file__).read_text().splitlines()
PACKAGE = os.path.dirname(os.path.abspath(concurrency.__file__))
STRATEGIES = ("random", "pct", "dfs")


def line_of(marker: str) -> int:
    """The 1-based line of this file that ends with the comment `# <marker>`."""
    hits = [n for n, text in enumerate(SOURCE, 1) if text.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return hits[0]


def where(marker: str) -> str:
    return f"{FILE}:{line_of(marker)}"


def failure_of(fn: Callable[[], None], strategy: str = "dfs", **options: int) -> (
        concurrency.ScheduleFailure):
    with pytest.raises(concurrency.ScheduleFailure) as caught:
        concurrency.check(fn, strategy, **options)
    return caught.value


def replayed(fn: Callable[[], None], failure: concurrency.ScheduleFailure) -> (
        concurrency.ScheduleFailure):
    with pytest.raises(concurrency.ScheduleFailure) as again:
        concurrency.replay(fn, failure.replay)
    return again.value


def table(trace: str) -> tuple[list[str], list[list[str]]]:
    """The trace's column headers and steps, each cell with its wrapped pieces joined
    (spaces removed, so a cell reads the same however it was wrapped)."""
    lines = trace.splitlines()
    if lines[0].startswith("("):  # "(N earlier steps not shown)"
        lines = lines[1:]
    dashes = next(i for i, line in enumerate(lines) if set(line) == {"-"})
    pieces = [[cell.strip() for cell in line.split("|")] for line in lines[:dashes]]
    headers = ["".join(column) for column in zip(*pieces, strict=True)]
    steps: list[list[str]] = []
    for line in lines[dashes + 1:]:
        if " | " not in line and not line.endswith(" |"):
            break  # the notes and legend below the table
        cells = [cell.strip().replace(" ", "") for cell in line.split("|")]
        if cells[0]:
            steps.append(cells)
        else:  # a continuation line: the cells of the step above go on
            steps[-1] = [a + b for a, b in zip(steps[-1], cells, strict=True)]
    return headers, steps


def steps_of(trace: str) -> list[tuple[int, str, str, str]]:
    """(number, thread, what, file:line) of each step, whatever the layout; `*` dropped."""
    headers, steps = table(trace)
    in_file = re.search(r"^line = line number in (.+)$", trace, re.MULTILINE)
    assert (headers[-1] == "line") == bool(in_file), trace
    out = []
    for cells in steps:
        if headers[1:] == ["thread", "operation", "at"]:
            thread_name, what = cells[1], cells[2]
        else:
            lane = next(i for i in range(1, len(cells) - 1) if cells[i])
            thread_name, what = headers[lane], cells[lane]
        at = f"{in_file.group(1)}:{cells[-1]}" if in_file and cells[-1] else cells[-1]
        out.append((int(cells[0]), thread_name, what.removeprefix("*"), at))
    return out


def preempted(trace: str) -> int:
    _, steps = table(trace)
    return sum(1 for cells in steps if any(cell.startswith("*") for cell in cells[1:]))


def squeezed(text: str) -> str:
    return text.replace(" ", "")


# --------------------------------------------------------------------------- failing bodies


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = sync.Mutex(balance, name="balance")

    def withdraw(self, amount: int) -> None:
        with self.balance.lock() as guard:
            enough = guard.value >= amount
        if enough:
            with self.balance.lock() as guard:
                guard.value -= amount
                assert guard.value >= 0, "balance went negative"  # overdrawn


def overdraft() -> None:
    """Two withdrawals check, then debit: the second debit overdraws (raised in a worker)."""
    account = Account(100)
    with thread.scope() as s:  # scope-line
        s.spawn(account.withdraw, 80, name="worker-1")
        s.spawn(account.withdraw, 50, name="worker-2")


def lost_update() -> None:
    """Two increments read, then write, a counter: one is lost (found in main)."""
    hits = sync.Mutex(0, name="hits")

    def increment() -> None:
        with hits.lock() as guard:
            seen = guard.value
        with hits.lock() as guard:
            guard.value = seen + 1

    first = thread.spawn(increment, name="worker-1")
    second = thread.spawn(increment, name="worker-2")
    first.join()
    second.join()
    with hits.lock() as guard:
        assert guard.value == 2, f"lost an update: hits is {guard.value}"


class Pool:
    def __init__(self) -> None:
        self.lock = sync.Mutex([], name="pool.lock")


def crossed_pools() -> None:
    """Two pools, each with a lock named `pool.lock`, taken in opposite orders."""
    a, b = Pool(), Pool()

    def move(source: Pool, target: Pool) -> None:
        with source.lock.lock(), target.lock.lock():  # second-lock
            pass

    with thread.scope() as s:  # joins
        s.spawn(move, a, b, name="worker-1")
        s.spawn(move, b, a, name="worker-2")


TWO_THREAD_FAILURES = {"overdraft": overdraft, "lost_update": lost_update,
                       "crossed_pools": crossed_pools}


# --------------------------------------------------------------------------- the whole story


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", sorted(TWO_THREAD_FAILURES))
def test_a_two_thread_failure_is_a_short_story_in_order(name: str, strategy: str) -> None:
    failure = failure_of(TWO_THREAD_FAILURES[name], strategy, seed=1)
    message = str(failure)
    lines = message.splitlines()
    assert len(lines) < 60, message
    headline = lines[0]
    if failure.kind == "deadlock":
        assert headline.startswith("deadlock: worker-")
    else:
        assert re.match(r"AssertionError in thread (main|worker-[12]): \w", headline), headline
    order = [message.index(part) for part in (
        f"  strategy:   {strategy}", f"  execution:  {failure.iteration} of at most",
        "Trace (", failure.trace, "Replay token: ", f"concurrency.replay({name}, ")]
    assert order == sorted(order), "headline, finding, trace, details, replay: in that order"
    if failure.kind == "exception":
        traceback_at = message.index("Traceback (most recent call last)")
        assert message.index(failure.trace) < traceback_at < message.index("Replay token: ")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_headline_names_the_worker_that_raised_not_the_scope_that_reraised(
        strategy: str) -> None:
    failure = failure_of(overdraft, strategy, seed=1)
    message = str(failure)
    headline = message.splitlines()[0]
    assert re.fullmatch(r"AssertionError in thread worker-[12]: balance went negative", headline)
    assert "in the test body" not in message and "in thread main:" not in message
    worker = headline.split()[3].rstrip(":")
    assert "re-raised in thread main inside ExceptionGroup('errors in thread scope')" in message
    exits = {who: what for _, who, what, _ in steps_of(failure.trace) if what.startswith("exit")}
    assert exits["main"] == squeezed(f"exit raised ExceptionGroup of AssertionError from {worker}")
    assert exits[worker].startswith(squeezed("exit raised AssertionError('balance went negative"))


def test_the_traceback_keeps_the_users_frames_and_hides_the_librarys() -> None:
    message = str(failure_of(overdraft))
    files = re.findall(r'File "([^"]+)", line (\d+)', message)
    assert files, message
    for filename, _ in files:
        assert not os.path.abspath(filename).startswith(PACKAGE + os.sep), filename
        assert not filename.endswith("contextlib.py"), filename
    assert (__file__, str(line_of("overdrawn"))) in files
    assert (__file__, str(line_of("scope-line"))) in files


def test_frames_in_concurrency_examples_are_the_users() -> None:
    message = str(failure_of(bank.overdraft))
    assert f'File "{bank.__file__}"' in message
    assert message.startswith("AssertionError in thread main: account overdrawn")


def test_an_exception_reraised_by_join_is_reported_in_the_thread_that_raised_it() -> None:
    def body() -> None:
        def parse() -> None:
            raise ValueError("bad input")  # parse-raises

        def relay() -> None:
            thread.spawn(parse, name="parser").join()  # relay-joins

        thread.spawn(relay, name="relay").join()  # main-joins-relay

    failure = failure_of(body)
    message = str(failure)
    assert message.startswith("ValueError in thread parser: bad input\n")
    assert "re-raised in thread main by join()" in message
    assert isinstance(failure.error, ValueError)
    exits = {who: (what, at) for _, who, what, at in steps_of(failure.trace)
             if what.startswith("exit")}
    assert exits == {
        "parser": (squeezed("exit raised ValueError('bad input')"), where("parse-raises")),
        "relay": (squeezed("exit raised ValueError('bad input') from parser"), where("relay-joins")),
        "main": (squeezed("exit raised ValueError('bad input') from parser"), where("main-joins-relay")),
    }


def test_several_exceptions_in_a_scope_are_all_named_with_their_threads() -> None:
    def body() -> None:
        def fail(kind: type[Exception]) -> None:
            raise kind("broken")

        with thread.scope() as s:
            s.spawn(fail, KeyError, name="keys")
            s.spawn(fail, ValueError, name="values")

    message = str(failure_of(body))
    assert message.startswith("KeyError in thread keys: 'broken'\n")
    assert "inside ExceptionGroup('errors in thread scope') with 1 more:" in message
    assert "  ValueError in thread values: broken" in message


def test_a_poisoned_lock_is_reported_in_the_thread_that_met_it() -> None:
    def body() -> None:
        ledger = sync.Mutex(0, name="ledger")

        def crash() -> None:
            with ledger.lock():
                raise KeyError("half-written")

        handle = thread.spawn(crash, name="writer")
        try:
            handle.join()
        except KeyError:
            pass
        with ledger.lock():
            pass

    failure = failure_of(body)
    assert failure.kind == "poisoned"
    assert str(failure).startswith("PoisonError in thread main: ledger is poisoned")
    exits = {who: what for _, who, what, _ in steps_of(failure.trace) if what.startswith("exit")}
    assert exits["writer"] == squeezed("exit raised KeyError('half-written')"), failure.trace


def test_a_livelock_headline_names_the_last_thread() -> None:
    def body() -> None:
        stop = atomic.AtomicBool(name="stop")

        def spin() -> None:
            while not stop.load():
                thread.yield_now()

        thread.spawn(spin, name="spinner")

    failure = failure_of(body, "random", max_steps=50, iterations=2)
    headline = str(failure).splitlines()[0]
    assert "more than 50 steps" in headline and "thread spinner" in headline


# --------------------------------------------------------------------------- the trace


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", sorted(TWO_THREAD_FAILURES))
def test_the_trace_header_counts_its_rows_and_replays_print_the_same(name: str,
                                                                     strategy: str) -> None:
    fn = TWO_THREAD_FAILURES[name]
    failure = failure_of(fn, strategy, seed=3)
    message = str(failure)
    header = re.search(r"^Trace \((\d+) steps?, (\d+) (preemptions?), (\d+) threads\):$",
                       message, re.MULTILINE)
    assert header, message
    steps, preemptions, word, threads = header.groups()
    assert word == ("preemption" if preemptions == "1" else "preemptions")
    numbered = steps_of(failure.trace)
    assert [step[0] for step in numbered] == list(range(1, int(steps) + 1))
    assert preempted(failure.trace) == int(preemptions)
    assert threads == "3"
    assert all(len(line) <= 100 for line in failure.trace.splitlines()), failure.trace
    again = replayed(fn, failure)
    assert again.trace == failure.trace
    assert str(again).splitlines()[0] == message.splitlines()[0]


def test_one_preemption_is_singular() -> None:
    failure = failure_of(lost_update, "dfs")
    assert "1 preemption," in str(failure)
    assert "1 preemptions" not in str(failure)


def test_a_blocking_write_shows_that_it_blocks_then_that_it_acquired() -> None:
    def body() -> None:
        table = sync.RwLock(0, name="table")
        guard = table.read()

        def writer() -> None:
            with table.write() as held:
                held.value = 1

        handle = thread.spawn(writer, name="writer")
        probe = table.try_read()  # None only while a writer waits
        if probe is not None:
            probe.unlock()
        guard.unlock()
        handle.join()
        assert probe is not None, "a writer was waiting"

    failure = failure_of(body)
    writer = [what for _, who, what, _ in steps_of(failure.trace) if who == "writer"]
    assert squeezed("write table (blocks)") in writer
    assert squeezed("write table (acquired)") in writer
    assert writer.index(squeezed("write table (blocks)")) < writer.index(
        squeezed("write table (acquired)"))
    assert len(set(writer)) == len(writer), f"every row of the writer differs: {writer}"


def test_only_a_notified_waiter_is_notified() -> None:
    def body() -> None:
        flag = sync.Mutex(False, name="flag")
        ready = sync.Condvar(name="ready")

        def setter() -> None:
            with flag.lock() as guard:
                guard.value = True
            ready.notify_one()

        handle = thread.spawn(setter, name="setter")
        with flag.lock() as guard:
            while not guard.value:
                ready.wait(guard)
        handle.join()
        raise RuntimeError("show the trace")

    failure = failure_of(body)
    main = [what for _, who, what, _ in steps_of(failure.trace) if who == "main"]
    assert "woken" not in failure.trace
    assert squeezed("wait ready") in main, "dfs runs the waiter first"
    assert main.index(squeezed("wait ready")) < main.index(squeezed("wait ready (notified)"))
    assert squeezed("unlock flag (in ready.wait)") in main


def test_a_waiter_never_notified_is_reported_as_waiting() -> None:
    def body() -> None:
        flag = sync.Mutex(False, name="flag")
        ready = sync.Condvar(name="ready")

        def waiter() -> None:
            with flag.lock() as guard:
                while not guard.value:
                    ready.wait(guard)  # waits

        with thread.scope() as s:  # main-joins
            s.spawn(waiter, name="waiter")
            with flag.lock() as guard:
                guard.value = True  # forgot to notify

    failure = failure_of(body)
    message = str(failure)
    assert message.startswith("deadlock: waiter waits in ready.wait (not notified)\n")
    assert re.search(rf"waiter +waits in ready\.wait \(not notified\) +{where('waits')}", message)
    assert re.search(rf"main +waits for waiter to finish +{where('main-joins')}", message)
    assert "woken" not in message and "(notified)" not in failure.trace


def test_many_threads_and_long_names_stay_within_100_columns_and_lose_nothing() -> None:
    long_thread = "a-worker-thread-with-a-rather-long-descriptive-name"
    long_object = "the_shared_request_counter_of_the_frontend_pool"

    def body() -> None:
        counter = sync.Mutex(0, name=long_object)

        def increment() -> None:
            with counter.lock() as guard:
                seen = guard.value
            with counter.lock() as guard:
                guard.value = seen + 1

        with thread.scope() as s:
            for index in range(6):
                s.spawn(increment, name=f"{long_thread}-{index}")
        with counter.lock() as guard:
            assert guard.value == 6

    failure = failure_of(body, "random", seed=1)
    trace = failure.trace
    assert all(len(line) <= 100 for line in trace.splitlines()), trace
    headers, _ = table(trace)
    assert headers == ["step", "thread", "operation", "at"], "seven threads: the list layout"
    steps = steps_of(trace)
    header = re.search(r"Trace \((\d+) steps", str(failure))
    assert header and len(steps) == int(header.group(1))
    assert steps[0][1:3] == ("main", squeezed(f"spawn {long_thread}-0"))
    assert {who for _, who, _, _ in steps} == {"main", *(f"{long_thread}-{i}" for i in range(6))}
    assert any(what == squeezed(f"lock {long_object}") for _, _, what, _ in steps)


def test_two_threads_with_long_names_wrap_in_the_swimlane() -> None:
    long_thread = "worker-with-a-name-much-too-long-for-any-column-of-a-swimlane"

    def body() -> None:
        cell = atomic.AtomicInt(0, name="cell")

        def bump() -> None:
            cell.store(cell.load() + 1)

        with thread.scope() as s:
            s.spawn(bump, name=f"{long_thread}-1")
            s.spawn(bump, name=f"{long_thread}-2")
        assert cell.load() == 2, "lost an update"

    failure = failure_of(body)
    lines = failure.trace.splitlines()
    assert all(len(line) <= 100 for line in lines), failure.trace
    assert not lines[1].startswith("-"), "the long names wrap over several header lines"
    headers, _ = table(failure.trace)
    assert headers[:4] == ["step", "main", f"{long_thread}-1", f"{long_thread}-2"]
    assert {who for _, who, _, _ in steps_of(failure.trace)} == set(headers[1:4])


# --------------------------------------------------------------------------- same names


def test_objects_sharing_a_name_are_numbered_in_trace_and_deadlock_listing() -> None:
    failure = failure_of(crossed_pools)
    message = str(failure)
    done = {what for _, _, what, _ in steps_of(failure.trace)}
    assert {"lockpool.lock", "lockpool.lock#2"} <= done
    assert re.match(r"deadlock: worker-1 waits for pool\.lock(#2)? held by worker-2; "
                    r"worker-2 waits for pool\.lock(#2)? held by worker-1\n", message), message
    waits = re.findall(r"^  (worker-[12]) +waits for (pool\.lock(?:#2)?) held by (worker-[12]) +"
                       + re.escape(where("second-lock")) + "$", message, re.MULTILINE)
    assert sorted(lock for _, lock, _ in waits) == ["pool.lock", "pool.lock#2"], message
    assert re.search(rf"^  main +waits for worker-1 to finish +{where('joins')}$", message,
                     re.MULTILINE)
    assert replayed(crossed_pools, failure).trace == failure.trace


def test_objects_sharing_a_name_are_numbered_in_error_messages() -> None:
    def body() -> None:
        first, second = Pool(), Pool()
        with first.lock.lock():
            pass
        second.lock.lock()
        second.lock.lock()

    message = str(failure_of(body))
    assert message.startswith(
        "RuntimeError in thread main: pool.lock#2 is already locked by this thread (main)")


def test_numbering_is_per_execution_and_skips_names_already_taken() -> None:
    seen: list[list[str]] = []

    def body() -> None:
        made = [sync.Mutex(name="Mutex#2"), sync.Mutex(), sync.Mutex(), sync.Mutex(name="x"),
                sync.Mutex(name="x"), sync.Mutex(name="x#2")]
        seen.append([mutex.name for mutex in made])  # type: ignore[attr-defined]

    concurrency.check(body, "random", iterations=3)
    assert seen == [["Mutex#2", "Mutex#1", "Mutex#3", "x", "x#2", "x#2#2"]] * 3


# --------------------------------------------------------------------------- deadlocks


def test_a_deadlock_names_who_holds_a_read_write_lock_and_in_which_mode() -> None:
    def body() -> None:
        table = sync.RwLock(0, name="table")
        gate = sync.Mutex(name="gate")

        def reader() -> None:
            with table.read(), gate.lock():  # reader-waits
                pass

        def locker() -> None:
            with gate.lock(), table.write():  # writer-waits
                pass

        thread.spawn(reader, name="reader")
        thread.spawn(locker, name="locker")

    message = str(failure_of(body))
    assert message.startswith("deadlock: reader waits for gate held by locker; "
                              "locker waits to write table held by reader (read)\n"), message
    assert re.search(rf"reader +waits for gate held by locker +{where('reader-waits')}", message)
    assert re.search(rf"locker +waits to write table held by reader \(read\) +"
                     rf"{where('writer-waits')}", message)


def test_a_lock_left_held_by_a_finished_thread_says_so() -> None:
    def body() -> None:
        gate = sync.Mutex(name="gate")
        thread.spawn(gate.lock, name="leaker").join()
        gate.lock()  # main-waits

    message = str(failure_of(body))
    assert message.startswith("deadlock: main waits for gate held by leaker (finished)\n")
    assert re.search(rf"main +waits for gate held by leaker \(finished\) +{where('main-waits')}",
                     message)


def test_four_threads_in_one_file_keep_the_swimlane_with_line_numbers() -> None:
    def body() -> None:
        tally = sync.Mutex(0, name="tally_of_additions")

        def add() -> None:
            with tally.lock() as guard:  # read
                seen = guard.value
            with tally.lock() as guard:  # write
                guard.value = seen + 1

        with thread.scope() as s:
            for name in ("adder-one", "adder-two", "adder-three"):
                s.spawn(add, name=name)
        with tally.lock() as guard:
            assert guard.value == 3, "an addition was lost"

    failure = failure_of(body)
    lines = failure.trace.splitlines()
    assert all(len(line) <= 100 for line in lines), failure.trace
    headers, _ = table(failure.trace)
    assert headers == ["step", "main", "adder-one", "adder-two", "adder-three", "line"]
    assert lines[-2:] == [f"line = line number in {FILE}", LEGEND]
    lines_used = {at for _, _, what, at in steps_of(failure.trace) if what == "locktally_of_additions"}
    assert {where("read"), where("write")} <= lines_used


def test_threads_sharing_a_name_are_numbered_in_reports() -> None:
    def body() -> None:
        a = sync.Mutex(name="a")
        b = sync.Mutex(name="b")

        def take(first: sync.Mutex[None], second: sync.Mutex[None]) -> None:
            with first.lock(), second.lock():
                pass

        with thread.scope() as s:
            s.spawn(take, a, b, name="worker")
            s.spawn(take, b, a, name="worker")

    failure = failure_of(body)
    message = str(failure)
    assert message.startswith("deadlock: worker waits for b held by worker#2; "
                              "worker#2 waits for a held by worker\n"), message
    headers, _ = table(failure.trace)
    assert headers[1:4] == ["main", "worker", "worker#2"]
    assert "spawnworker#2" in {what for _, _, what, _ in steps_of(failure.trace)}
