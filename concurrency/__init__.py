"""`concurrency`: threads you can prove.

Import it instead of `threading`. `concurrency.sync` has locks that own their
data (with poisoning), `concurrency.thread` spawns and scopes threads,
`concurrency.lifecycle` cancels, tracks and shuts them down in order, and the
same code runs on real threads (`threading`, `fast`) or under the deterministic
model checker (`random`, `pct`, `dfs`), chosen by `CONCURRENCY_BACKEND`.
"""

from __future__ import annotations

from typing import Any

from ._errors import ConfigError, IncompleteSearchWarning, Panic, PoisonError
from .backends import ACTIVE_BACKEND

for _public in (ConfigError, IncompleteSearchWarning, Panic, PoisonError):
    _public.__module__ = __name__  # tracebacks say concurrency.PoisonError, where users import it
del _public

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "IncompleteSearchWarning",
    "Panic",
    "PoisonError",
    "ReplayDivergence",
    "Report",
    "ScheduleFailure",
    "backend",
    "check",
    "replay",
    "test",
]


def backend() -> str:
    """The backend this process runs on: threading, fast, random, pct or dfs."""
    return ACTIVE_BACKEND


_LAZY = {
    "test": "concurrency._testing",
    "check": "concurrency.backends.model.api",
    "replay": "concurrency.backends.model.api",
    "Report": "concurrency.backends.model.api",
    "ScheduleFailure": "concurrency.backends.model.api",
    "ReplayDivergence": "concurrency.backends.model.api",
}


def __getattr__(name: str) -> Any:
    """Import the test and model-checker entry points on first use."""
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'concurrency' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
