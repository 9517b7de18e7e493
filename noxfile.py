"""Sessions: one test run per backend, lint, typecheck and the benchmarks.

`nox -t tests` runs every `tests-<backend>` session (the README's test command).
"""

from __future__ import annotations

import nox

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
