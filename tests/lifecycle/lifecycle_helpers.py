"""Helpers for the real-thread and subprocess parts of the lifecycle tests.

Nothing here may be used inside a `@concurrency.test` body: these read the
wall clock, sleep for real, or start processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import concurrency

MODEL_STRATEGIES = ("random", "pct", "dfs")
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

real_threads_only = pytest.mark.skipif(
    concurrency.backend() in MODEL_STRATEGIES,
    reason="measures real time or OS threads; the model backends run on virtual time",
)
process_level = pytest.mark.skipif(
    concurrency.backend() in MODEL_STRATEGIES,
    reason="starts a real process and signals it; the real-thread sessions run it",
)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll `predicate` (test code only) until it holds; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: this checkout importable, the backend kept."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_script(source: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet in a fresh interpreter and return its outcome."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True, text=True, timeout=timeout, env=child_env(),
    )


class Child:
    """A child process whose stdout lines are collected as they arrive.

    stderr goes to a file (a stack dump must never block on a full pipe).
    """

    def __init__(self, args: list[str], stderr_path: Path, **env: str) -> None:
        self._stderr_file = stderr_path.open("w")
        self.stderr_path = stderr_path
        self.process = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=self._stderr_file,
            text=True, env=child_env(**env),
        )
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="child-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        with self._seen:
            found = self._seen.wait_for(
                lambda: text in self.lines or self.process.poll() is not None, timeout
            )
        assert text in self.lines, (
            f"no {text!r} line within {timeout}s (found={found}); stdout so far: {self.lines}; "
            f"stderr: {self.stderr()}"
        )

    def finish(self, timeout: float = 60.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        self._stderr_file.close()
        return code

    def stderr(self) -> str:
        """What the child wrote to stderr so far (it writes to the file directly)."""
        return self.stderr_path.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()
