"""Reads `CONCURRENCY_BACKEND` once, when `concurrency` is first imported."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ._errors import ConfigError

REAL_THREAD_BACKENDS = ("threading", "fast")
MODEL_STRATEGIES = ("random", "pct", "dfs")
VALID_BACKENDS = REAL_THREAD_BACKENDS + MODEL_STRATEGIES
DEFAULT_BACKEND = "fast"


def backend_from_environment(environ: Mapping[str, str] = os.environ) -> str:
    """Return the backend named by `CONCURRENCY_BACKEND`, or fail naming the bad value."""
    raw = environ.get("CONCURRENCY_BACKEND")
    if raw is None or raw.strip() == "":
        return DEFAULT_BACKEND
    name = raw.strip().lower()
    if name not in VALID_BACKENDS:
        raise ConfigError(
            f"CONCURRENCY_BACKEND={raw!r} is not a backend; valid values are: "
            + ", ".join(VALID_BACKENDS)
        )
    return name
