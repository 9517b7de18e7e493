"""Helpers for the real-thread parts of the suite (timing, waiting, CPU use).

Nothing here may be used inside a `@concurrency.test` body that runs on the
model backends: these read the wall clock and sleep for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

import concurrency
from concurrency import thread

MODEL_STRATEGIES = ("random", "pct", "dfs")
REAL_BACKENDS = ("threading", "fast")

real_threads_only = pytest.mark.skipif(
    concurrency.backend() in MODEL_STRATEGIES,
    reason="measures real time, CPU use or OS threads; model backends run on virtual time",
)


# Joins in @concurrency.test bodies: on real threads a hang becomes a clear TimeoutError
# instead of a pytest-timeout kill; the model backends detect deadlocks themselves (and a
# virtual-time timeout there could fire as a mere scheduling choice).
JOIN_TIMEOUT: float | None = 10.0 if concurrency.backend() in REAL_BACKENDS else None


def settle(threads: int = 1) -> None:
    """Give `threads` freshly started threads time to reach their blocking call.

    Like CPython's `wait_threads_blocked`: a too-short pause only makes a test
    exercise less, it never makes a correct implementation fail.
    """
    time.sleep(0.05 * threads)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.002)


def assert_took(elapsed: float, expected: float) -> None:
    """A timed wait lasted about `expected` seconds (CPython lock_tests' tolerance).

    At least 0.6x (clock granularity) and well under 10x plus a second of
    scheduling slack on a loaded two-core machine.
    """
    assert elapsed >= expected * 0.6, f"returned after {elapsed:.3f}s, expected ~{expected}s"
    assert elapsed < expected * 10 + 1.0, f"returned after {elapsed:.3f}s, expected ~{expected}s"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Call `fn` and return its result with the seconds it took."""
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def join_all(handles: list[thread.JoinHandle[Any]], timeout: float = 10.0) -> list[Any]:
    """Join every handle (raising the first failure) and return their results."""
    return [handle.join(timeout=timeout) for handle in handles]
