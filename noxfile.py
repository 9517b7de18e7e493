"""Sessions: one test run per backend, lint, typecheck and the benchmarks.

`nox -t tests` runs every `tests-<backend>` session and `tests-freethreaded`
(the README's test command).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

BACKENDS = ("threading", "fast", "random", "pct", "dfs")


def _make_test_session(backend: str) -> None:
    @nox.session(name=f"tests-{backend}", tags=["tests"])
    def tests(session: nox.Session) -> None:
        session.install("-e", ".[test]")
        session.run(
            "pytest",
            "-n", "2",
            "-p", "no:cacheprovider",
            *session.posargs,
            env={"CONCURRENCY_BACKEND": backend},
        )


for _backend in BACKENDS:
    _make_test_session(_backend)


# Pins for the free-threaded interpreter (3.13.5t, built by .ci/freethreaded-python).
# PEP 508 has no marker for a free-threaded build, so they live here, not in pyproject.toml.
FREETHREADED_CONSTRAINTS = """\
# 3.3 is the first greenlet that declares Py_MOD_GIL_NOT_USED (older ones turn the GIL back
# on when the model checker imports them); 3.5.4 and later call _PyCriticalSection_SuspendAll,
# which 3.13.5t does not export, and fail to compile.
greenlet>=3.3,<3.5.4
# 6.156 and later ship a Rust extension with no cp313t wheel; building it needs crates.io.
hypothesis<6.156
"""


def _freethreaded_interpreter(session: nox.Session) -> str:
    """The free-threaded python3.13t, built into a cache outside the clone the first time."""
    session.log("bash .ci/freethreaded-python (builds CPython 3.13t once: ~5-12 min on 2 cores)")
    result = subprocess.run(
        ["bash", ".ci/freethreaded-python"], stdout=subprocess.PIPE, text=True, check=False
    )  # the build log goes to stderr, as it happens
    if result.returncode != 0:
        session.error(f".ci/freethreaded-python failed with status {result.returncode}")
    return result.stdout.strip().splitlines()[-1]


def _freethreaded_venv(session: nox.Session, interpreter: str) -> Path:
    """A venv made with `interpreter` in this session's nox directory, reused while it matches.

    nox's own `python=` would need the interpreter to exist when the noxfile is
    loaded, which would build it for every session (`nox -s lint` too).
    """
    venv = session.env_dir
    python = venv / "bin" / "python"
    config = venv / "pyvenv.cfg"
    home = str(Path(interpreter).parent)
    fresh = not (python.exists() and config.exists() and f"home = {home}\n" in config.read_text())
    if fresh or not nox.options.reuse_existing_virtualenvs:
        session.run(interpreter, "-m", "venv", "--clear", str(venv), external=True)
    return venv


@nox.session(name="tests-freethreaded", tags=["tests"], venv_backend="none")
def tests_freethreaded(session: nox.Session) -> None:
    """The real-thread backends and tests/test_freethreaded.py on CPython 3.13t, GIL disabled."""
    if sys.platform == "win32":
        session.skip("the free-threaded interpreter is built on POSIX only")
    venv = _freethreaded_venv(session, _freethreaded_interpreter(session))
    python = str(venv / "bin" / "python")
    constraints = venv / "constraints.txt"
    constraints.write_text(FREETHREADED_CONSTRAINTS)
    session.run(python, "-m", "pip", "install", "-q", "-c", str(constraints), "-e", ".[test]",
                external=True)
    env = {"PYTHON_GIL": "0", "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    # pytest-timeout's default method is a SIGALRM handler, which a main thread blocked in a
    # lock acquire may never run on this build: a hung test would hang the run. The thread
    # method dumps the stacks and ends the worker instead (xdist then starts a new one).
    pytest = (python, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "--timeout-method=thread")
    failed = []
    for backend, skip in (("fast", ()), ("threading", ("--ignore=tests/test_freethreaded.py",))):
        session.log(f"CONCURRENCY_BACKEND={backend}, PYTHON_GIL=0")
        try:  # run both backends, then report
            session.run(*pytest, *skip, *session.posargs, external=True,
                        env={**env, "CONCURRENCY_BACKEND": backend})
        except CommandFailed:
            failed.append(backend)
    if failed:
        session.error(f"tests failed on the free-threaded build with: {', '.join(failed)}")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "concurrency", "pytest_concurrency", "tests", "stress", "examples",
                "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".")
    for script in ("stress/bench_sync.py", "stress/bench_channels.py", "stress/bench_model.py"):
        session.run("python", script, *session.posargs)
