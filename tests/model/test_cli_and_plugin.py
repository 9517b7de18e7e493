"""The entry points, each run in a child process the way a user runs it.

`@concurrency.test` under pytest on every model backend (failures print a
replay command that works when pasted into a shell), `backends=` skips,
the `--concurrency-*` options, pytest-xdist, the `python -m concurrency`
command line and its exit codes, and a bad `CONCURRENCY_BACKEND`.
The backend is read once per process, so none of this can run in-process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 120  # seconds for one child process: generous, they take one or two

GENERATED_TESTS = '''
import concurrency
from concurrency import sync, thread


@concurrency.test
def test_lost_update():
    counter = sync.Mutex(0, name="counter")

    def add():
        with counter.lock() as guard:
            seen = guard.value
        with counter.lock() as guard:
            guard.value = seen + 1

    with thread.scope() as s:
        s.spawn(add, name="alice")
        s.spawn(add, name="bob")
    assert counter.lock().value == 2, "an update was lost"


@concurrency.test
def test_counter():
    counter = sync.Mutex(0)

    def add():
        with counter.lock() as guard:
            guard.value += 1

    with thread.scope() as s:
        s.spawn(add)
        s.spawn(add)
    assert counter.lock().value == 2


@concurrency.test(backends=("threading",))
def test_only_on_threading():
    pass
'''

CLI_TARGETS = '''
from concurrency import sync, thread
from concurrency.sync import atomic


def _two_increments(atomically):
    counter = atomic.AtomicInt()

    def add():
        if atomically:
            counter.fetch_add(1)
        else:
            counter.store(counter.load() + 1)

    with thread.scope() as s:
        s.spawn(add)
        s.spawn(add)
    assert counter.load() == 2, "an increment was lost"


def correct():
    _two_increments(True)


def buggy():
    _two_increments(False)
'''


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment without the concurrency and pytest settings of this run."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("CONCURRENCY_", "PYTEST_")) and key != "PYTHONPATH"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(settings)
    return env


def run(args: list[str], cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=child_env(**settings), capture_output=True,
                          text=True, timeout=TIMEOUT)


def run_pytest(cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfs", *args],
               cwd, **settings)


def summary(output: str) -> str:
    """pytest's closing counts, e.g. `1 failed, 1 passed, 1 skipped`."""
    found = re.findall(r"=+ (\d+ \w+(?:, \d+ \w+)*) in [\d.]+s", output)
    assert found, output[-2000:]
    return found[-1]


def trace_rows(output: str) -> list[str]:
    """The swimlane rows of the (first) trace in a failure message, prefixes removed."""
    rows = []
    for line in output.splitlines():
        text = re.sub(r"^E\s+", "", line).strip()
        if re.match(r"^\d+ \| ", text):
            rows.append(text)
        elif rows and text.startswith("* = preemption"):
            break
    assert rows, output[-3000:]
    return rows


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "test_generated.py").write_text(GENERATED_TESTS)
    (tmp_path / "cli_targets.py").write_text(CLI_TARGETS)
    return tmp_path


REPLAY_COMMAND = re.compile(
    r"CONCURRENCY_REPLAY=(cc2-[\w-]+) pytest 'test_generated.py::test_lost_update'"
)


# --------------------------------------------------------------------------- pytest


@pytest.mark.parametrize("backend", ["pct", "random"])
def test_decorated_tests_under_a_model_backend(project: Path, backend: str) -> None:
    done = run_pytest(project, "test_generated.py", CONCURRENCY_BACKEND=backend)
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert summary(out) == "1 failed, 1 passed, 1 skipped"
    assert f"concurrency: backend={backend}" in out
    assert f"strategy:   {backend} (seed " in out
    assert "FAILED test_generated.py::test_lost_update" in out
    assert REPLAY_COMMAND.search(out), out[-3000:]
    assert f"runs only on backends threading; this run uses {backend}" in out


def test_dfs_failure_prints_a_replay_command_that_works(project: Path) -> None:
    found = run_pytest(project, "test_generated.py", CONCURRENCY_BACKEND="dfs")
    assert found.returncode == 1
    assert summary(found.stdout) == "1 failed, 1 passed, 1 skipped"
    assert "strategy:   dfs (exhaustive)" in found.stdout
    command = REPLAY_COMMAND.search(found.stdout)
    assert command, found.stdout[-3000:]
    # Paste the printed command into a shell, as is (on the default backend).
    replayed = run(["bash", "-c", command.group(0) + " -p no:cacheprovider"], project)
    assert replayed.returncode == 1, replayed.stdout[-3000:]
    assert summary(replayed.stdout) == "1 failed"
    assert "strategy:   replay of a recorded schedule" in replayed.stdout
    assert trace_rows(replayed.stdout) == trace_rows(found.stdout)


def test_backend_option_iterations_and_seed(project: Path) -> None:
    done = run_pytest(project, "test_generated.py", "--concurrency-backend=pct",
                      "--concurrency-iterations=50", "--concurrency-seed=4242")
    out = done.stdout
    assert "concurrency: backend=pct" in out
    assert summary(out) == "1 failed, 1 passed, 1 skipped"
    assert "strategy:   pct (seed 4242, depth 3)" in out
    assert re.search(r"execution:  \d+ of at most 50", out), out[-3000:]


def test_xdist(project: Path) -> None:
    done = run_pytest(project, "-n", "2", "test_generated.py", CONCURRENCY_BACKEND="dfs")
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert summary(out) == "1 failed, 1 passed, 1 skipped"
    assert REPLAY_COMMAND.search(out), out[-3000:]


def test_bogus_backend_fails_at_import_naming_the_value(project: Path) -> None:
    imported = run([sys.executable, "-c", "import concurrency"], project,
                   CONCURRENCY_BACKEND="bogus")
    assert imported.returncode != 0
    assert "CONCURRENCY_BACKEND='bogus' is not a backend" in imported.stderr
    assert "threading, fast, random, pct, dfs" in imported.stderr
    under_pytest = run_pytest(project, "test_generated.py", CONCURRENCY_BACKEND="bogus")
    assert under_pytest.returncode == 4  # pytest's usage error
    assert under_pytest.stderr.strip() == (
        "ERROR: CONCURRENCY_BACKEND='bogus' is not a backend; valid values are: "
        "threading, fast, random, pct, dfs"
    ), under_pytest.stderr
    assert "INTERNALERROR" not in under_pytest.stdout + under_pytest.stderr


# --------------------------------------------------------------------------- command line


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "concurrency", *args], project)


def test_cli_check_exit_codes_and_replay(project: Path) -> None:
    ok = cli(project, "check", "cli_targets:correct", "--strategy", "dfs")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "the whole schedule space" in ok.stdout and "no failure" in ok.stdout

    bad = cli(project, "check", "cli_targets:buggy", "--strategy", "random",
              "--iterations", "200", "--seed", "3")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "strategy:   random (seed 3)" in bad.stdout
    command = re.search(r"python -m concurrency replay cli_targets:buggy (cc2-[\w-]+)", bad.stdout)
    assert command, bad.stdout

    replayed = cli(project, "replay", "cli_targets:buggy", command.group(1))
    assert replayed.returncode == 1
    assert trace_rows(replayed.stdout) == trace_rows(bad.stdout)


@pytest.mark.parametrize("args", [
    ["check", "cli_targets:correct", "--iterations", "0"],
    ["check", "cli_targets:correct", "--strategy", "bogus"],
    ["replay", "cli_targets:buggy", "cc2-damaged"],
    ["frobnicate"],
], ids=["zero-iterations", "bad-strategy", "damaged-token", "unknown-command"])
def test_cli_bad_usage_exits_2(project: Path, args: list[str]) -> None:
    done = cli(project, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error" in done.stderr


@pytest.mark.parametrize("args", [
    ["check", "no_colon_here"],
    ["check", "no_such_module:fn"],
    ["check", "cli_targets:no_such_function"],
], ids=["no-colon", "unknown-module", "unknown-function"])
def test_cli_unloadable_target_exits_2(project: Path, args: list[str]) -> None:
    done = cli(project, *args)
    assert "error" in done.stdout + done.stderr
    assert done.returncode == 2


def test_cli_token_of_another_function_exits_2(project: Path) -> None:
    bad = cli(project, "check", "cli_targets:buggy", "--strategy", "dfs")
    token = re.search(r"Replay token: (cc2-[\w-]+)", bad.stdout)
    assert token, bad.stdout
    done = cli(project, "replay", "cli_targets:correct", token.group(1))
    assert "was recorded for" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.returncode == 2


def test_cli_demo(project: Path) -> None:
    done = cli(project, "demo")
    assert done.returncode == 0, done.stdout + done.stderr
    token = re.search(r"Replay token: (cc2-[\w-]+)", done.stdout)
    assert token, done.stdout
    assert f"python -m concurrency replay concurrency.examples.bank:overdraft {token.group(1)}" in (
        done.stdout
    )
    assert "the trace is identical" in done.stdout
    assert "the whole schedule space" in done.stdout
