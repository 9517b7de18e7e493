"""`python -m concurrency`: truthful verdicts, exit statuses and a command line that behaves.

Each case runs the command line in a child process, as a user would, and
checks what they would see: the exit status, stdout and stderr (one clear line,
never a traceback, for every error that is the user's input).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import concurrency
from concurrency import __main__ as cli_module
from concurrency.backends.model.api import DEFAULT_ITERATIONS

from .test_cli_and_plugin import TIMEOUT, child_env, run

TARGETS = '''
import os
from pathlib import Path

from concurrency import sync, thread
from concurrency.sync import atomic


def correct():
    counter = atomic.AtomicInt()
    with thread.scope() as s:
        s.spawn(counter.fetch_add, 1)
        s.spawn(counter.fetch_add, 1)
    assert counter.load() == 2


def buggy():
    counter = atomic.AtomicInt()

    def add():
        counter.store(counter.load() + 1)

    with thread.scope() as s:
        s.spawn(add)
        s.spawn(add)
    assert counter.load() == 2, "an increment was lost"


def _lock_heavy(threads, rounds):
    total = sync.Mutex(0)

    def work():
        for _ in range(rounds):
            with total.lock() as guard:
                guard.value += 1

    with thread.scope() as s:
        for _ in range(threads):
            s.spawn(work)


def many_schedules():
    """1680 schedules: more than a small budget, few enough to finish."""
    _lock_heavy(3, 3)


def endless():
    """Far too many schedules to finish: only Ctrl-C ends the search."""
    Path("started").touch()
    _lock_heavy(4, 6)


def needs_arguments(account, amount, *rest, fee=0, currency, **options):
    Path("ran").write_text("the checker called a function that needs arguments")


def changes_between_runs():
    """Spawns one more thread once the file `more` exists: a replay of an old token diverges."""
    counter = atomic.AtomicInt()

    def add():
        counter.store(counter.load() + 1)

    with thread.scope() as s:
        for _ in range(3 if os.path.exists("more") else 2):
            s.spawn(add)
    assert counter.load() >= 2, "an increment was lost"
'''


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "targets.py").write_text(TARGETS)
    return tmp_path


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "concurrency", *args], project)


def token_of(output: str) -> str:
    found = re.search(r"Replay token: (cc2-[\w-]+)", output)
    assert found, output[-3000:]
    return found.group(1)


def assert_one_line(stderr: str, expected: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], stderr
    assert "Traceback" not in stderr


# --------------------------------------------------------------------------- verdicts


def test_a_complete_search_passes_quietly_even_when_strict(project: Path) -> None:
    done = cli(project, "check", "targets:correct", "--strategy", "dfs", "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"dfs: \d+ executions, the whole schedule space, \d+ steps, [\d.]+s, "
                        r"no failure\n", done.stdout), done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(("args", "coverage"), [
    (["--strategy", "random"], f"searched {DEFAULT_ITERATIONS['random']} schedules, a sample: "
                               "NOT the whole space"),
    (["--strategy", "pct", "--iterations", "50"], "searched 50 schedules, a sample: NOT the whole space"),
    (["--strategy", "dfs", "--iterations", "10"],
     "searched 10 schedules, stopped at its budget: NOT the whole space"),
    (["--strategy", "dfs", "--preemption-bound", "1"],
     "schedules, every schedule with at most 1 preemption: NOT the whole space"),
], ids=["random", "pct", "dfs-budget", "dfs-bounded"])
def test_an_incomplete_search_says_so_and_fails_only_when_strict(
        project: Path, args: list[str], coverage: str) -> None:
    target = "targets:many_schedules"
    passed = cli(project, "check", target, *args)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "no failure" in passed.stdout and "NOT the whole space" in passed.stdout
    assert_one_line(passed.stderr, coverage)
    assert passed.stderr.startswith("searched ")

    strict = cli(project, "check", target, *args, "--strict")
    assert strict.returncode == 3, strict.stdout + strict.stderr
    assert strict.stdout == passed.stdout.replace(_seconds(passed.stdout), _seconds(strict.stdout))
    assert_one_line(strict.stderr, coverage)
    assert "--strict fails it" in strict.stderr


def _seconds(report: str) -> str:
    found = re.search(r"[\d.]+s, no failure", report)
    assert found, report
    return found.group(0)


def test_a_found_failure_exits_1_and_replays(project: Path) -> None:
    found = cli(project, "check", "targets:buggy", "--strategy", "dfs", "--strict")
    assert found.returncode == 1, found.stdout + found.stderr
    assert "an increment was lost" in found.stdout
    replayed = cli(project, "replay", "targets:buggy", token_of(found.stdout))
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "an increment was lost" in replayed.stdout


# --------------------------------------------------------------------------- tokens


def test_a_damaged_token_is_one_line_exit_2(project: Path) -> None:
    done = cli(project, "replay", "targets:buggy", "cc2-!!!")
    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_line(done.stderr, "damaged")
    not_a_token = cli(project, "replay", "targets:buggy", "hello")
    assert not_a_token.returncode == 2
    assert_one_line(not_a_token.stderr, "is not a replay token")


def test_a_token_of_another_function_is_one_line_exit_2(project: Path) -> None:
    token = token_of(cli(project, "check", "targets:buggy", "--strategy", "dfs").stdout)
    done = cli(project, "replay", "targets:correct", token)
    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_line(done.stderr, "was recorded for targets.buggy, not targets.correct")


def test_a_diverging_replay_means_nondeterminism_exit_1(project: Path) -> None:
    token = token_of(cli(project, "check", "targets:changes_between_runs", "--strategy", "dfs").stdout)
    (project / "more").write_text("")
    done = cli(project, "replay", "targets:changes_between_runs", token)
    assert done.returncode == 1, done.stdout + done.stderr
    first, *details = done.stderr.splitlines()  # the decision, then what differed and why
    assert first.startswith("replay diverged: ") and "at decision 1" in first, done.stderr
    assert "Traceback" not in done.stderr and any("add-3" in line for line in details)
    assert done.stdout == ""


# --------------------------------------------------------------------------- usage


def test_a_target_that_needs_arguments_is_refused_before_running(project: Path) -> None:
    for command in (["check", "targets:needs_arguments"],
                    ["replay", "targets:needs_arguments", "cc2-AAAA"]):
        done = cli(project, *command)
        assert done.returncode == 2, done.stdout + done.stderr
        assert_one_line(done.stderr, "targets:needs_arguments needs arguments account, amount, "
                                     "currency")
        assert not (project / "ran").exists()


@pytest.mark.parametrize("args", [
    ["check", "targets:correct", "--iterations", "0"],
    ["check", "targets:correct", "--iterations", "many"],
    ["check", "targets:correct", "--strategy", "threading"],
    ["check", "targets:correct", "--strategy", "random", "--preemption-bound", "2"],
    ["check", "targets:correct", "--strategy", "dfs", "--preemption-bound", "-1"],
    ["check"],
], ids=["zero-iterations", "word-iterations", "real-thread-strategy", "bound-without-dfs",
        "negative-bound", "no-target"])
def test_bad_arguments_exit_2(project: Path, args: list[str]) -> None:
    done = cli(project, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error" in done.stderr and "Traceback" not in done.stderr


def test_a_module_that_raises_on_import_shows_where_and_exits_2(project: Path) -> None:
    (project / "broken.py").write_text("def f():\n    pass\n\nraise ValueError('half-written module')\n")
    done = cli(project, "check", "broken:f")
    assert done.returncode == 2
    assert "ValueError: half-written module" in done.stderr  # the traceback, for the user's bug
    assert done.stderr.strip().splitlines()[-1] == (
        "error: cannot import 'broken': it raised (traceback above)"
    )


def test_version() -> None:
    done = run([sys.executable, "-m", "concurrency", "--version"], Path.cwd())
    assert done.returncode == 0
    assert done.stdout == f"concurrency {concurrency.__version__}\n"


def _actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {label}", sub_action) for label, sub_action in _actions(sub)]
        else:
            found.append(("/".join(action.option_strings) or action.dest, action))
    return found


def test_every_option_has_help() -> None:
    actions = _actions(cli_module._parser())
    assert len(actions) > 15
    missing = [label for label, action in actions
               if not action.help or action.help == argparse.SUPPRESS]
    assert not missing, f"options without help text: {missing}"


def test_help_states_defaults_strict_and_exit_statuses(project: Path) -> None:
    top = cli(project, "--help").stdout
    for status in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert re.search(rf"^\s+{status}", top, re.MULTILINE), top
    check_help = " ".join(cli(project, "check", "--help").stdout.split())
    defaults = ", ".join(f"{name} {count}" for name, count in DEFAULT_ITERATIONS.items())
    assert f"default per strategy: {defaults}" in check_help
    assert "only an exhaustive dfs search without --preemption-bound" in check_help
    assert "(default: random)" in check_help
    for word in ("random:", "pct:", "dfs:"):
        assert word in check_help


# --------------------------------------------------------------------------- the terminal


def _first_line_then_close(project: Path, *args: str) -> tuple[bytes, int, str]:
    """Read one line of the command's stdout, then close it, as `... | head -1` does."""
    child = subprocess.Popen([sys.executable, "-m", "concurrency", *args], cwd=project,
                             env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    child.stdout.close()
    stderr = child.stderr.read().decode()
    return first, child.wait(TIMEOUT), stderr


def test_a_closed_stdout_ends_quietly(project: Path) -> None:
    # The demo writes a heading, then searches, then writes the rest into the closed pipe.
    first, status, stderr = _first_line_then_close(project, "demo")
    assert first.startswith(b"=====")
    assert stderr == "", stderr
    assert status == 0


def test_piped_into_head_keeps_the_verdict(project: Path) -> None:
    for target, status in (("targets:buggy", 1), ("targets:correct", 0)):
        done = run(["bash", "-c", "set -o pipefail; python -m concurrency check "
                    f"{target} --strategy dfs | head -1"], project)
        assert done.returncode == status, done.stdout + done.stderr
        assert len(done.stdout.splitlines()) == 1
        assert done.stderr == ""


@pytest.mark.parametrize("delay", [0.0, 0.5])
def test_ctrl_c_exits_130_with_one_line(project: Path, delay: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "concurrency", "check", "targets:endless", "--strategy", "dfs",
         "--iterations", "1000000000"],
        cwd=project, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while not (project / "started").exists() and child.poll() is None:
        assert time.monotonic() < deadline, "the search never started"
        time.sleep(0.01)
    time.sleep(delay)
    assert child.poll() is None, "the search ended before it could be interrupted"
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=TIMEOUT)
    assert (child.returncode, stderr, stdout[-2000:]) == (130, "interrupted\n", "")
