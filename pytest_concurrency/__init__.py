"""pytest plugin for `concurrency` (registered through the `pytest11` entry point).

Options: `--concurrency-backend`, `--concurrency-iterations`, `--concurrency-seed`.
This module lives outside the `concurrency` package on purpose: it must set
`CONCURRENCY_BACKEND` before `concurrency` is first imported (by a conftest or
a test module), because the backend is read once, at that import.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

_OPTION_ENV = {
    "concurrency_backend": "CONCURRENCY_BACKEND",
    "concurrency_iterations": "CONCURRENCY_ITERATIONS",
    "concurrency_seed": "CONCURRENCY_SEED",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("concurrency")
    group.addoption(
        "--concurrency-backend",
        choices=("threading", "fast", "random", "pct", "dfs"),
        help="backend for this run (sets CONCURRENCY_BACKEND)",
    )
    group.addoption(
        "--concurrency-iterations",
        type=int,
        help="executions per @concurrency.test (stress repeats on real threads)",
    )
    group.addoption(
        "--concurrency-seed", type=int, help="seed for the random and pct strategies"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """Export the options as environment variables before conftests import concurrency."""
    namespace = early_config.known_args_namespace
    for option, variable in _OPTION_ENV.items():
        value = getattr(namespace, option, None)
        if value is not None:
            os.environ[variable] = str(value)


def pytest_configure(config: pytest.Config) -> None:
    wanted = config.getoption("concurrency_backend")
    module = sys.modules.get("concurrency")
    if wanted and module is not None and module.backend() != wanted:
        raise pytest.UsageError(
            f"--concurrency-backend={wanted} came too late: concurrency was already imported "
            f"with backend {module.backend()!r}; set CONCURRENCY_BACKEND={wanted} instead"
        )


def pytest_report_header(config: pytest.Config) -> Any:
    import concurrency

    return f"concurrency: backend={concurrency.backend()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `@concurrency.test(backends=...)` tests that exclude this run's backend."""
    import concurrency

    active = concurrency.backend()
    for item in items:
        options = getattr(getattr(item, "function", None), "__concurrency_test__", None)
        allowed = options.get("backends") if options else None
        if allowed is not None and active not in allowed:
            item.add_marker(pytest.mark.skip(
                reason=f"runs only on backends {', '.join(allowed)}; this run uses {active}"
            ))
