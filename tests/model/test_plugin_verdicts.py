"""The pytest plugin's verdicts: `--concurrency-strict`, the incomplete-search summary, one-line usage errors.

Each case runs pytest in a child process (the backend is read once per
process), with and without pytest-xdist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pytest_concurrency
from concurrency import _testing
from concurrency.backends.model.api import TEST_ITERATIONS

from .test_cli_and_plugin import run_pytest, summary

SEARCHES = '''
import concurrency
from concurrency import sync, thread


def _lock_heavy():
    total = sync.Mutex(0)

    def work():
        for _ in range(3):
            with total.lock() as guard:
                guard.value += 1

    with thread.scope() as s:
        for _ in range(3):
            s.spawn(work)


@concurrency.test(iterations=5)
def test_budget_of_5():
    _lock_heavy()


@concurrency.test(iterations=7)
def test_budget_of_7():
    _lock_heavy()


@concurrency.test
def test_small_enough():
    pass
'''

SUMMARY = re.compile(r"^concurrency: (\d+) dfs searches stopped at their budget "
                     r"\(NOT the whole space\): (.*)$", re.MULTILINE)
LISTED = ("test_searches.py::test_budget_of_5 (5 schedules), "
          "test_searches.py::test_budget_of_7 (7 schedules)")


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "test_searches.py").write_text(SEARCHES)
    return tmp_path


def only_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# --------------------------------------------------------------------------- incomplete searches


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_incomplete_searches_pass_with_a_warning_and_a_summary_line(
        project: Path, xdist: list[str]) -> None:
    done = run_pytest(project, *xdist, CONCURRENCY_BACKEND="dfs")
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    assert summary(out) == "3 passed, 2 warnings"
    assert out.count("IncompleteSearchWarning: test_searches.py::test_budget_of_") == 2
    found = SUMMARY.findall(out)
    assert found and found[0][0] == "2", out[-3000:]
    assert found[0][1].startswith(LISTED + ";"), found
    assert "--concurrency-strict" in found[0][1]


@pytest.mark.parametrize("how", [["--concurrency-strict"], ["-n", "2", "--concurrency-strict"], []],
                         ids=["option", "option-xdist", "environment"])
def test_strict_fails_the_incomplete_searches(project: Path, how: list[str]) -> None:
    settings = {"CONCURRENCY_BACKEND": "dfs"}
    if not how:
        settings["CONCURRENCY_STRICT"] = "1"
    done = run_pytest(project, *how, **settings)
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert summary(out) == "2 failed, 1 passed"
    assert "FAILED test_searches.py::test_budget_of_5" in out
    assert "strict mode: an incomplete search fails" in out
    assert "concurrency: backend=dfs, strict" in out
    assert not SUMMARY.search(out)


def test_no_summary_line_when_every_search_completes(project: Path) -> None:
    done = run_pytest(project, "--concurrency-iterations=5000", "--concurrency-strict",
                      CONCURRENCY_BACKEND="dfs")
    assert done.returncode == 0, done.stdout[-3000:]
    assert summary(done.stdout) == "3 passed"
    assert "dfs search" not in done.stdout


def test_the_sampling_strategies_are_not_listed(project: Path) -> None:
    done = run_pytest(project, "--concurrency-strict", CONCURRENCY_BACKEND="pct")
    assert done.returncode == 0, done.stdout[-3000:]
    assert summary(done.stdout) == "3 passed"
    assert "dfs search" not in done.stdout


# --------------------------------------------------------------------------- usage errors


BOGUS = ("ERROR: CONCURRENCY_BACKEND='bogus' is not a backend; valid values are: "
         "threading, fast, random, pct, dfs")


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_bad_backend_is_one_line(project: Path, xdist: list[str]) -> None:
    done = run_pytest(project, *xdist, CONCURRENCY_BACKEND="bogus")
    assert done.returncode == 4, done.stdout + done.stderr
    assert only_line(done.stderr) == BOGUS
    assert "INTERNALERROR" not in done.stdout + done.stderr


def test_a_bad_backend_met_by_a_conftest_import_is_one_line(project: Path) -> None:
    (project / "conftest.py").write_text("import concurrency\n")
    done = run_pytest(project, CONCURRENCY_BACKEND="bogus")
    assert done.returncode == 4, done.stdout + done.stderr
    assert only_line(done.stderr) == BOGUS


def test_the_backend_option_overrides_the_environment(project: Path) -> None:
    done = run_pytest(project, "--concurrency-backend=pct", CONCURRENCY_BACKEND="bogus")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "concurrency: backend=pct" in done.stdout


def test_a_backend_option_that_comes_too_late_is_one_line(project: Path) -> None:
    (project / "early_plugin.py").write_text("import concurrency\n")
    done = run_pytest(project, "-p", "early_plugin", "--concurrency-backend=dfs",
                      CONCURRENCY_BACKEND="pct")
    assert done.returncode == 4, done.stdout + done.stderr
    assert only_line(done.stderr) == (
        "ERROR: --concurrency-backend=dfs came too late: concurrency was already imported with "
        "backend 'pct'; set CONCURRENCY_BACKEND=dfs instead"
    )


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CONCURRENCY_STRICT", "yes", "CONCURRENCY_STRICT='yes' is not valid"),
    ("CONCURRENCY_ITERATIONS", "many", "CONCURRENCY_ITERATIONS='many' is not an integer"),
    ("CONCURRENCY_ITERATIONS", "0", "CONCURRENCY_ITERATIONS must be >= 1"),
    ("CONCURRENCY_SEED", "x", "CONCURRENCY_SEED='x' is not an integer"),
])
def test_a_bad_setting_is_one_line(project: Path, variable: str, value: str, message: str) -> None:
    done = run_pytest(project, **{variable: value})
    assert done.returncode == 4, done.stdout + done.stderr
    assert only_line(done.stderr).startswith(f"ERROR: {message}")


def test_help_works_whatever_the_settings(project: Path) -> None:
    done = run_pytest(project, "--help", CONCURRENCY_BACKEND="bogus")
    assert done.returncode == 0, done.stderr
    assert "--concurrency-strict" in done.stdout


# --------------------------------------------------------------------------- help


def test_every_option_has_help_with_its_default(project: Path) -> None:
    done = run_pytest(project, "--help")
    text = " ".join(done.stdout.split())
    options = re.findall(r"(--concurrency-[a-z-]+)(?:=\w+)? (\S[^-]*)", text)
    assert {name for name, _ in options} == {
        "--concurrency-backend", "--concurrency-iterations", "--concurrency-seed",
        "--concurrency-strict",
    }, options
    assert "(default: $CONCURRENCY_BACKEND, else fast)" in text
    assert "(default: derived from each test's name" in text
    assert "(default: it passes with an IncompleteSearchWarning)" in text
    assert pytest_concurrency._DEFAULTS_HELP in text


def test_the_defaults_in_the_help_are_the_real_ones() -> None:
    real = (f"defaults: {_testing.DEFAULT_REAL_ITERATIONS} real-thread repeats on threading and "
            f"fast, {TEST_ITERATIONS['random']} on random and pct, {TEST_ITERATIONS['dfs']} on dfs")
    assert real == pytest_concurrency._DEFAULTS_HELP
    assert TEST_ITERATIONS["random"] == TEST_ITERATIONS["pct"]


def test_the_plugin_docstring_names_every_option() -> None:
    for option in ("--concurrency-backend", "--concurrency-iterations", "--concurrency-seed",
                   "--concurrency-strict"):
        assert option in (pytest_concurrency.__doc__ or "")
