"""Verdict edge cases: bodies that would pass unrun, dfs runs that end early."""

from __future__ import annotations

import itertools

import pytest

import concurrency
from concurrency import thread
from concurrency.backends.model.scheduler.dfs import NondeterminismError
from concurrency.sync import atomic


async def async_body() -> None:
    raise AssertionError("never runs")


def generator_body():  # type: ignore[no-untyped-def]
    yield
    raise AssertionError("never runs")


@pytest.mark.parametrize("body", [async_body, generator_body])
def test_a_body_that_would_pass_unrun_is_refused(body: object) -> None:
    with pytest.raises(TypeError, match="runs none of its body"):
        concurrency.check(body, "dfs")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="runs none of its body"):
        concurrency.test(body)  # type: ignore[call-overload]


_runs = itertools.count()


def fewer_operations_on_later_runs() -> None:
    """Makes one operation fewer from the third execution on: the space is not what dfs saw."""
    counter = atomic.AtomicInt()
    rounds = 3 if next(_runs) < 2 else 1

    def work() -> None:
        for _ in range(rounds):
            counter.fetch_add(1)

    with thread.scope() as scope:
        scope.spawn(work)
        scope.spawn(work)


def test_dfs_never_claims_the_whole_space_when_a_run_ends_early() -> None:
    with pytest.raises(NondeterminismError, match="not deterministic"):
        concurrency.check(fewer_operations_on_later_runs, "dfs")
