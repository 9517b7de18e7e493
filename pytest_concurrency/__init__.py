"""pytest plugin for `concurrency` (registered through the `pytest11` entry point).

Options (each also settable through the environment variable it exports):

    --concurrency-backend=NAME    CONCURRENCY_BACKEND: threading, fast (default), random, pct, dfs
    --concurrency-iterations=N    CONCURRENCY_ITERATIONS: executions per @concurrency.test
                                  (defaults: 20 real-thread repeats on threading/fast; 100
                                  schedules on random and pct; 1000 on dfs)
    --concurrency-seed=N          CONCURRENCY_SEED: seed for random and pct (default: derived
                                  from each test's name, so a run repeats)
    --concurrency-strict          CONCURRENCY_STRICT=1: a dfs search that stops at its budget
                                  fails instead of passing with an IncompleteSearchWarning

At the end of a run, a line lists the dfs searches that stopped at their
budget and how many schedules each explored (also under `pytest -n`).

This module lives outside the `concurrency` package on purpose: it must set
`CONCURRENCY_BACKEND` before `concurrency` is first imported (by a conftest or
a test module), because the backend is read once, at that import. A backend
name that `concurrency` rejects is reported as one usage error line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Generator
from typing import Any

import pytest

_OPTION_ENV = {
    "concurrency_backend": "CONCURRENCY_BACKEND",
    "concurrency_iterations": "CONCURRENCY_ITERATIONS",
    "concurrency_seed": "CONCURRENCY_SEED",
    "concurrency_strict": "CONCURRENCY_STRICT",
}

# The help texts cannot import `concurrency` (that would read the backend before
# the options are exported), so the defaults are spelled out here; a test keeps
# them equal to `_testing.DEFAULT_REAL_ITERATIONS` and `api.TEST_ITERATIONS`.
_BACKENDS = ("threading", "fast", "random", "pct", "dfs")
_DEFAULTS_HELP = "defaults: 20 real-thread repeats on threading and fast, 100 on random and pct, 1000 on dfs"

_EXPLORED = re.compile(r"explored (\d+) schedules")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("concurrency", "concurrency: backends and the model checker")
    group.addoption(
        "--concurrency-backend",
        choices=_BACKENDS,
        metavar="NAME",
        help="backend for this run: threading, fast, random, pct or dfs (default: "
             "$CONCURRENCY_BACKEND, else fast). Sets CONCURRENCY_BACKEND, which is read once, "
             "when concurrency is first imported.",
    )
    group.addoption(
        "--concurrency-iterations",
        type=int,
        metavar="N",
        help="executions per @concurrency.test, overriding its iterations=: stress "
             "repeats on real threads, schedules explored on the model ("
             + _DEFAULTS_HELP + "). Sets CONCURRENCY_ITERATIONS.",
    )
    group.addoption(
        "--concurrency-seed",
        type=int,
        metavar="N",
        help="seed for the random and pct strategies, for tests without seed= (default: "
             "derived from each test's name, so a run repeats). Sets CONCURRENCY_SEED.",
    )
    group.addoption(
        "--concurrency-strict",
        action="store_true",
        default=None,
        help="fail a dfs @concurrency.test whose search stops at its budget before "
             "covering the whole schedule space (default: it passes with an "
             "IncompleteSearchWarning). Sets CONCURRENCY_STRICT=1.",
    )


@pytest.hookimpl(tryfirst=True, wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> Generator[None, None, None]:
    """Export the options as environment variables before conftests import concurrency."""
    namespace = early_config.known_args_namespace
    for option, variable in _OPTION_ENV.items():
        value = getattr(namespace, option, None)
        if value is True:
            os.environ[variable] = "1"
        elif value is not None:
            os.environ[variable] = str(value)
    try:
        return (yield)
    except Exception as failure:  # a conftest imported concurrency with a bad setting
        config_error = _config_error(failure)
        if config_error is None:
            raise
        raise pytest.UsageError(str(config_error)) from None


def _config_error(error: BaseException | None) -> BaseException | None:
    """The `concurrency.ConfigError` that `error` is or wraps, if any.

    Matched by name: when the import of `concurrency` fails, the class cannot be
    imported from it.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if type(error).__name__ == "ConfigError" and type(error).__module__.startswith("concurrency"):
            return error
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None


def _import_concurrency() -> Any:
    """`import concurrency`, with a setting it rejects reported as a usage error."""
    try:
        import concurrency
    except Exception as failure:
        config_error = _config_error(failure)
        if config_error is None:
            raise
        raise pytest.UsageError(str(config_error)) from None
    return concurrency


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_IncompleteSearches(config), "concurrency-incomplete-searches")
    wanted = config.getoption("concurrency_backend")
    module = sys.modules.get("concurrency")
    if wanted and module is not None and module.backend() != wanted:
        raise pytest.UsageError(
            f"--concurrency-backend={wanted} came too late: concurrency was already imported "
            f"with backend {module.backend()!r}; set CONCURRENCY_BACKEND={wanted} instead"
        )
    if getattr(config.option, "help", False):
        return  # `pytest --help` works whatever the settings
    _import_concurrency()  # fail now, in one line, on a bad CONCURRENCY_BACKEND
    try:
        _check_settings()
    except ValueError as bad:
        raise pytest.UsageError(str(bad)) from None


def _check_settings() -> None:
    """Refuse bad CONCURRENCY_* values now, rather than once per test."""
    if os.environ.get("CONCURRENCY_STRICT", "").strip():
        from concurrency.backends.model.api import strict_wanted

        strict_wanted()
    for variable, least in (("CONCURRENCY_ITERATIONS", 1), ("CONCURRENCY_SEED", None)):
        raw = os.environ.get(variable, "")
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{variable}={raw!r} is not an integer") from None
        if least is not None and value < least:
            raise ValueError(f"{variable} must be >= {least}, got {value}")


def pytest_report_header(config: pytest.Config) -> Any:
    concurrency = _import_concurrency()
    strict = ", strict" if os.environ.get("CONCURRENCY_STRICT", "").strip() == "1" else ""
    return f"concurrency: backend={concurrency.backend()}{strict}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `@concurrency.test(backends=...)` tests that exclude this run's backend."""
    concurrency = _import_concurrency()

    active = concurrency.backend()
    for item in items:
        options = getattr(getattr(item, "function", None), "__concurrency_test__", None)
        allowed = options.get("backends") if options else None
        if allowed is not None and active not in allowed:
            item.add_marker(pytest.mark.skip(
                reason=f"runs only on backends {', '.join(allowed)}; this run uses {active}"
            ))


class _IncompleteSearches:
    """Collects `IncompleteSearchWarning`s and lists them in one line at the end of the run.

    `pytest_warning_recorded` also fires in the xdist controller for warnings
    recorded by its workers, so the line covers `pytest -n` runs too.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.searches: dict[str, str] = {}  # test id -> how far it got

    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str,
                                location: Any) -> None:
        from concurrency import IncompleteSearchWarning

        category = getattr(warning_message, "category", None)
        if not (isinstance(category, type) and issubclass(category, IncompleteSearchWarning)):
            return
        explored = _EXPLORED.search(str(warning_message.message))
        name = nodeid or (f"{location[0]}:{location[1]}" if location else "?")
        self.searches[name] = f"{explored.group(1)} schedules" if explored else "budget reached"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.searches:
            return
        count = len(self.searches)
        listed = ", ".join(f"{name} ({got})" for name, got in sorted(self.searches.items()))
        verb = "search stopped at its" if count == 1 else "searches stopped at their"
        terminalreporter.write_line(
            f"concurrency: {count} dfs {verb} budget (NOT the whole space): {listed}; "
            "raise iterations=, bound preemption_bound=, or fail them with --concurrency-strict",
            yellow=True,
        )
