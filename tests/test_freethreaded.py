"""Free-threaded CPython (3.13t): `concurrency` must not turn the GIL back on.

On a free-threaded build, importing an extension module that does not declare
`Py_mod_gil = Py_MOD_GIL_NOT_USED` re-enables the GIL for the whole process
(with a RuntimeWarning naming the module) unless `PYTHON_GIL=0` forces it off.
The contract says importing `concurrency` keeps it off, so these checks run
each program in a fresh interpreter with `PYTHON_GIL` unset and no `-X gil`,
and name the modules that turned the GIL on when one did.

The model checker runs executions on greenlets: greenlet declares that it runs
without the GIL from 3.3 on, so `check()` must keep it off too.

Skipped unless this interpreter is a free-threaded build.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sysconfig.get_config_var("Py_GIL_DISABLED"),
    reason="needs a free-threaded CPython build (python3.13t); nox -s tests-freethreaded runs it",
)

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("fast", "threading", "random", "pct", "dfs")
GIL_WARNING = re.compile(r"The global interpreter lock \(GIL\) has been enabled to load module '([^']+)'")


def _fresh_interpreter(source: str, backend: str) -> subprocess.CompletedProcess[str]:
    """Run `source` in a new interpreter left to decide about the GIL by itself."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHON_GIL"}
    env["CONCURRENCY_BACKEND"] = backend
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-W", "always::RuntimeWarning", "-c", textwrap.dedent(source)],
        capture_output=True, text=True, timeout=120, env=env,
    )


def _assert_gil_stays_disabled(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, result.stderr
    culprits = GIL_WARNING.findall(result.stderr)
    assert result.stdout.strip().splitlines()[-1] == "gil enabled: False", (
        f"{what} re-enabled the GIL; modules that turned it on: {culprits or 'none named'}\n"
        f"{result.stderr}"
    )
    assert not culprits, f"{what}: {culprits} asked for the GIL"


def test_this_run_has_the_gil_disabled() -> None:
    assert not sys._is_gil_enabled()  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_importing_concurrency_keeps_the_gil_disabled(backend: str) -> None:
    result = _fresh_interpreter("""
        import sys
        import concurrency
        from concurrency import lifecycle, sync, thread

        mutex = sync.Mutex(0)
        with mutex.lock() as guard:
            guard.value += 1
        sync.RwLock(0), sync.Condvar(), sync.channel()
        thread.spawn(lambda: None).join()
        print("backend", concurrency.backend())
        print("gil enabled:", sys._is_gil_enabled())
    """, backend)
    _assert_gil_stays_disabled(result, f"import concurrency (CONCURRENCY_BACKEND={backend})")


def test_importing_every_module_keeps_the_gil_disabled() -> None:
    result = _fresh_interpreter("""
        import importlib, pkgutil, sys
        import concurrency, pytest_concurrency

        for package in (concurrency, pytest_concurrency):
            for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                if not module.name.endswith("__main__"):
                    importlib.import_module(module.name)
        print("gil enabled:", sys._is_gil_enabled())
    """, "fast")
    _assert_gil_stays_disabled(result, "importing every module of concurrency")


@pytest.mark.parametrize("strategy", ["random", "pct", "dfs"])
def test_the_model_checker_keeps_the_gil_disabled(strategy: str) -> None:
    result = _fresh_interpreter(f"""
        import sys
        import greenlet
        import concurrency
        from concurrency import sync, thread

        def two_increments():
            counter = sync.Mutex(0)

            def increment():
                with counter.lock() as guard:
                    guard.value += 1

            with thread.scope() as scope:
                scope.spawn(increment)
                scope.spawn(increment)
            with counter.lock() as guard:
                assert guard.value == 2

        report = concurrency.check(two_increments, strategy={strategy!r}, iterations=20)
        print("greenlet", greenlet.__version__, report)
        print("gil enabled:", sys._is_gil_enabled())
    """, strategy)
    _assert_gil_stays_disabled(
        result, f"concurrency.check(strategy={strategy!r}) (greenlet declares Py_MOD_GIL_NOT_USED "
        "from 3.3 on; an older greenlet means the model needs the GIL)"
    )
