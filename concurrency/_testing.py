"""`@concurrency.test`: one test source for every backend.

On `threading` and `fast` the body runs `iterations` times on real threads, a
stress test. On `random`, `pct` and `dfs` it runs under the deterministic
scheduler, which explores interleavings and reports a replayable failure.
"""

from __future__ import annotations

import functools
import os
import unittest
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._config import MODEL_STRATEGIES, VALID_BACKENDS
from .backends import ACTIVE_BACKEND

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_REAL_ITERATIONS = 20


def _check_backends(backends: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if backends is None:
        return None
    if isinstance(backends, str):
        backends = (backends,)
    unknown = [b for b in backends if b not in VALID_BACKENDS]
    if unknown:
        raise ValueError(
            f"@concurrency.test: unknown backend(s) {unknown}; valid: {', '.join(VALID_BACKENDS)}"
        )
    return tuple(backends)


def _iterations_override() -> int | None:
    raw = os.environ.get("CONCURRENCY_ITERATIONS")
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"CONCURRENCY_ITERATIONS={raw!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"CONCURRENCY_ITERATIONS must be >= 1, got {value}")
    return value


def _replays(body: Callable[..., Any]) -> bool:
    """Whether `CONCURRENCY_REPLAY` holds a token for this test (one for another test raises)."""
    token = os.environ.get("CONCURRENCY_REPLAY")
    if not token:
        return False
    from .backends.model.api import check_replay_token

    check_replay_token(token, body)
    return True


@overload
def test(fn: F) -> F: ...
@overload
def test(
    fn: None = None,
    *,
    iterations: int | None = None,
    backends: tuple[str, ...] | None = None,
    seed: int | None = None,
    pct_depth: int = 3,
    max_steps: int | None = None,
    preemption_bound: int | None = None,
) -> Callable[[F], F]: ...


def test(
    fn: Callable[..., Any] | None = None,
    *,
    iterations: int | None = None,
    backends: tuple[str, ...] | None = None,
    seed: int | None = None,
    pct_depth: int = 3,
    max_steps: int | None = None,
    preemption_bound: int | None = None,
) -> Any:
    """Mark a test that runs on every backend (or only on `backends`)."""
    allowed = _check_backends(backends)
    if iterations is not None and iterations < 1:
        raise ValueError(f"@concurrency.test: iterations must be >= 1, got {iterations}")
    options = {
        "backends": allowed,
        "iterations": iterations,
        "seed": seed,
        "pct_depth": pct_depth,
        "max_steps": max_steps,
        "preemption_bound": preemption_bound,
    }

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
        from .backends.model.api import refuse_unrunnable

        refuse_unrunnable("@concurrency.test", body)  # on every backend: it would pass unrun
        @functools.wraps(body)
        def run(*args: Any, **kwargs: Any) -> None:
            __tracebackhide__ = True  # pytest: show the test's frames, not this wrapper
            if allowed is not None and ACTIVE_BACKEND not in allowed:
                raise unittest.SkipTest(
                    f"runs only on backends {', '.join(allowed)}; this run uses {ACTIVE_BACKEND}"
                )
            call = functools.partial(body, *args, **kwargs)
            if ACTIVE_BACKEND in MODEL_STRATEGIES or _replays(body):
                from .backends.model.api import run_model_test

                run_model_test(call, body, ACTIVE_BACKEND, options)
            else:
                count = _iterations_override() or iterations or DEFAULT_REAL_ITERATIONS
                for _ in range(count):
                    call()

        run.__concurrency_test__ = options  # type: ignore[attr-defined]
        return run

    if fn is not None:
        return decorate(fn)
    return decorate
