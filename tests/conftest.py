"""Shared fixtures for the `concurrency.sync` / `concurrency.thread` conformance suite.

The suite runs unchanged under every `CONCURRENCY_BACKEND`. Tests that touch
several threads are `@concurrency.test` functions, so the model backends can
explore their interleavings; tests that measure real time, CPU use or OS
threads skip themselves on the model strategies (see `sync_helpers`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import concurrency

MODEL_STRATEGIES = ("random", "pct", "dfs")
THREAD_LEAK_GRACE_SECONDS = 5.0


def pytest_report_header() -> str:
    return f"concurrency backend: {concurrency.backend()}"


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Every test leaves `threading.active_count()` where it found it (lock_tests' leak check).

    Real-thread backends only: a thread still alive after the test means a
    primitive left a waiter parked, or a test forgot to join what it spawned.
    """
    if concurrency.backend() in MODEL_STRATEGIES:
        yield
        return
    baseline = threading.active_count()
    yield
    deadline = time.monotonic() + THREAD_LEAK_GRACE_SECONDS
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    leaked = threading.active_count() - baseline
    if leaked > 0:
        names = sorted(t.name for t in threading.enumerate())
        pytest.fail(f"{leaked} thread(s) still running after the test: {names}")
