"""`CONCURRENCY_BACKEND` and `concurrency.backend()`.

The variable is read once, when `concurrency` is first imported; a bad value
fails that import, naming the value and the valid ones. Each case runs in a
fresh interpreter, since this process imported `concurrency` long ago.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
from sync_helpers import real_threads_only

import concurrency
from concurrency import sync

VALID = ("threading", "fast", "random", "pct", "dfs")


def run_python(code: str, backend: str | None) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with CONCURRENCY_BACKEND set (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != "CONCURRENCY_BACKEND"}
    if backend is not None:
        env["CONCURRENCY_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_backend_reports_the_environment() -> None:
    expected = os.environ.get("CONCURRENCY_BACKEND", "").strip().lower() or "fast"
    assert concurrency.backend() == expected
    assert concurrency.backend() in VALID


def test_facade_objects_come_from_the_process_backend() -> None:
    """Outside model executions, the model strategies build `threading` objects."""
    active = concurrency.backend()
    expected = active if active in ("threading", "fast") else "threading"
    backend_module = importlib.import_module(f"concurrency.backends.{expected}")
    built = {"Mutex": sync.Mutex(), "RwLock": sync.RwLock(), "Condvar": sync.Condvar(),
             "Semaphore": sync.Semaphore(1)}
    for name, obj in built.items():
        assert type(obj) is getattr(backend_module, name), obj
        assert isinstance(obj, getattr(sync, name))


@real_threads_only
@pytest.mark.parametrize("backend", VALID)
def test_each_valid_backend_is_selected(backend: str) -> None:
    result = run_python("import concurrency; print(concurrency.backend())", backend)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == backend


@real_threads_only
def test_default_is_fast() -> None:
    result = run_python("import concurrency; print(concurrency.backend())", None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fast"


@real_threads_only
@pytest.mark.parametrize("bad", ["bogus", "thread", "fast,threading"])
def test_bad_value_fails_at_import(bad: str) -> None:
    result = run_python("import concurrency", bad)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ConfigError" in last_line
    assert repr(bad) in last_line or bad in last_line
    for name in VALID:
        assert name in last_line


@real_threads_only
def test_config_error_is_a_value_error() -> None:
    code = (
        "try:\n"
        "    import concurrency\n"
        "except ValueError as e:\n"
        "    print(type(e).__name__)\n"
    )
    result = run_python(code, "nope")
    assert result.stdout.strip() == "ConfigError"


@real_threads_only
def test_the_variable_is_read_only_once() -> None:
    code = (
        "import os, concurrency\n"
        "from concurrency import sync\n"
        "os.environ['CONCURRENCY_BACKEND'] = 'fast'\n"
        "import importlib; importlib.import_module('concurrency.sync')\n"
        "from concurrency.backends import threading as checked\n"
        "print(concurrency.backend(), type(sync.Mutex()) is checked.Mutex)\n"
    )
    result = run_python(code, "threading")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["threading", "True"]
