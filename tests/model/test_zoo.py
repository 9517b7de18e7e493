"""The bug zoo under the model checker: every bug is found, every fix survives DFS.

For each entry of `concurrency.examples.zoo.BUGS` and each strategy, the
checker must find the bug within the entry's budget and report the expected
kind of failure with the expected symptom; the replay token must reproduce
that failure with an identical trace; and DFS must cover every schedule of the
fixed version without a failure. These tests call `concurrency.check`
directly, so they behave the same under every `CONCURRENCY_BACKEND`.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator

import pytest

import concurrency
from concurrency import sync, thread
from concurrency.examples import zoo
from concurrency.examples.zoo import BUGS, SEED, STRATEGIES, Bug

KINDS = {"exception", "deadlock", "poisoned"}


def _find(bug: Bug, strategy: str) -> concurrency.ScheduleFailure:
    """Run the checker on the buggy version within its budget; the failure it must raise."""
    with pytest.raises(concurrency.ScheduleFailure) as caught:
        concurrency.check(bug.buggy, strategy, iterations=bug.budget(strategy), seed=SEED)
    return caught.value


def _leaves(error: BaseException | None) -> Iterator[BaseException]:
    """The exceptions inside `error`, looking through (nested) exception groups."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    elif error is not None:
        yield error


def _assert_symptom(bug: Bug, failure: concurrency.ScheduleFailure) -> None:
    if bug.kind == "deadlock":
        message = str(failure)
        blocked = message.split("every unfinished thread is blocked:\n", 1)[1].split("\n\n")[0]
        blocked = [line for line in blocked.splitlines() if " waits " in line]
        assert any(bug.symptom in line for line in blocked), (
            f"{bug.name}: expected a thread blocked on {bug.symptom!r}; the report says:\n"
            + "\n".join(blocked)
        )
    else:
        raised = [type(error).__name__ for error in _leaves(failure.error)]
        assert bug.symptom in raised, f"{bug.name}: expected {bug.symptom}, the run raised {raised}"


@pytest.fixture(params=BUGS, ids=lambda bug: bug.name)
def bug(request: pytest.FixtureRequest) -> Bug:
    entry: Bug = request.param
    return entry


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_buggy_version_is_found_within_its_budget(bug: Bug, strategy: str) -> None:
    failure = _find(bug, strategy)
    assert failure.kind == bug.kind, f"{bug.name}: {failure}"
    assert 1 <= failure.iteration <= bug.budget(strategy)
    assert failure.strategy == strategy
    assert failure.seed == (None if strategy == "dfs" else SEED)
    _assert_symptom(bug, failure)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_replay_token_reproduces_the_failure_and_its_trace(bug: Bug, strategy: str) -> None:
    failure = _find(bug, strategy)
    with pytest.raises(concurrency.ScheduleFailure) as replayed:
        concurrency.replay(bug.buggy, failure.replay)
    again = replayed.value
    assert again.kind == failure.kind
    assert again.trace == failure.trace
    assert again.replay == failure.replay
    _assert_symptom(bug, again)


def test_fixed_version_passes_dfs_exhaustively(bug: Bug) -> None:
    report = concurrency.check(bug.fixed, "dfs")
    assert report.exhausted, f"{bug.name}_fixed: DFS stopped after {report.iterations} executions"
    assert report.iterations >= 1


def test_registry_entries_are_complete_and_consistent() -> None:
    names = [bug.name for bug in BUGS]
    assert len(names) >= 14
    assert len(set(names)) == len(names), "duplicate names in BUGS"
    for bug in BUGS:
        assert getattr(zoo, bug.name) is bug.buggy
        assert getattr(zoo, f"{bug.name}_fixed") is bug.fixed
        for fn in (bug.buggy, bug.fixed):
            assert not inspect.signature(fn).parameters, f"{fn.__name__} must take no arguments"
            assert fn.__doc__, f"{fn.__name__} needs a docstring saying what it shows"
        assert bug.kind in KINDS
        assert bug.what and "\n" not in bug.what
        assert bug.symptom
        assert all(bug.budget(strategy) >= 1 for strategy in STRATEGIES)
    assert {bug.kind for bug in BUGS} == KINDS, "the zoo should show every kind of failure"


def test_budget_rejects_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="replay"):
        BUGS[0].budget("replay")


def test_module_docstring_table_is_current() -> None:
    assert zoo.__doc__ is not None
    documented = [line.strip() for line in zoo.__doc__.splitlines()]
    measured = [line.strip() for line in zoo.table().splitlines()]
    start = documented.index(measured[0])
    assert documented[start:start + len(measured)] == measured, (
        "the table in concurrency/examples/zoo.py is stale; "
        "rewrite it with: python -m concurrency.examples.zoo --write"
    )


def test_dfs_runs_each_interleaving_of_critical_sections_exactly_once() -> None:
    """Two threads appending their tag three times under a mutex: C(6, 3) = 20 histories."""
    histories: list[str] = []

    def append_three(log: sync.Mutex[list[str]], tag: str) -> None:
        for _ in range(3):
            with log.lock() as guard:
                guard.value.append(tag)

    def body() -> None:
        log: sync.Mutex[list[str]] = sync.Mutex([], name="log")
        with thread.scope() as scope:
            scope.spawn(append_three, log, "a")
            scope.spawn(append_three, log, "b")
        with log.lock() as guard:
            histories.append("".join(guard.value))

    report = concurrency.check(body, "dfs")
    every_order = {
        "".join("a" if i in positions else "b" for i in range(6))
        for positions in itertools.combinations(range(6), 3)
    }
    assert report.exhausted
    assert report.iterations == len(histories) == 20
    assert set(histories) == every_order
