"""The seam between the facade and the backends.

Facade classes ask `implementation()` which backend module builds their
objects. That choice is made once per object, at construction: the methods
users call afterwards belong to the backend's own class, so `fast` pays no
per-operation dispatch. Inside a model execution the model runtime installs
itself in `execution_state`, and objects created there are scheduled by it.
"""

from __future__ import annotations

import importlib
import sys
import threading as _stdlib_threading
from types import ModuleType
from typing import Any

from .._config import MODEL_STRATEGIES, backend_from_environment

ACTIVE_BACKEND: str = backend_from_environment()


class _ExecutionState(_stdlib_threading.local):
    """Per-OS-thread slot holding the model runtime that is executing here, if any."""

    runtime: Any = None


execution_state = _ExecutionState()


def _real_thread_module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def implementation() -> Any:
    """The backend module that should build an object created right now."""
    runtime = execution_state.runtime
    if runtime is not None and not runtime.closed:
        return runtime.primitives
    return _PROCESS_MODULE


OUTSIDE_EXECUTION = (
    "a real-thread primitive would block inside a model execution, which only schedules "
    "the objects created inside the checked function: this one was created outside it "
    "(at module level, in a fixture, or before check() started). Create the locks, "
    "channels and other primitives the test shares inside the checked function"
)
"""What a real-thread primitive says when a model thread uses it (the native core's text too)."""


def refuse_in_model_execution() -> None:
    """Raise RuntimeError(OUTSIDE_EXECUTION) when a model execution runs on this OS thread."""
    if execution_state.runtime is not None:
        raise RuntimeError(OUTSIDE_EXECUTION)


def mark_model_thread(on: bool) -> bool:
    """Tell the native core whether a model execution runs on this OS thread; the previous mark.

    While it does, real-thread primitives (created outside the execution) refuse
    to block: the execution's threads share this OS thread, so a real block
    would stop all of them for good.
    """
    core = sys.modules.get("concurrency.backends.native._core")
    if core is None:  # not loaded: no native primitive exists to block
        return False
    return bool(core.set_model_thread(on))


def real_thread_module() -> ModuleType:
    """The real-thread backend used outside model executions."""
    return _PROCESS_MODULE


# Loaded last: the backend modules import the facade, which imports this module.
# Outside model executions the model strategies use the checked backend.
_PROCESS_MODULE: ModuleType = _real_thread_module(
    "threading" if ACTIVE_BACKEND in MODEL_STRATEGIES else ACTIVE_BACKEND
)
