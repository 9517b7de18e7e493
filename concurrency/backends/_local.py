"""`thread.local()`: one namespace per thread, real or simulated.

`threading.local` alone is wrong under the model backend, whose threads are
greenlets sharing one OS thread, so each access picks the namespace of the
thread that is running: the model thread inside an execution, else the OS thread.
"""

from __future__ import annotations

import threading
from typing import Any

from . import execution_state


class ThreadLocal:
    """Attributes set on it are visible only to the thread that set them."""

    __slots__ = ("__weakref__", "_real")

    def __init__(self) -> None:
        object.__setattr__(self, "_real", threading.local())

    def _namespace(self) -> dict[str, Any]:
        runtime = execution_state.runtime
        if runtime is not None:
            namespace: dict[str, Any] = runtime.thread_local_namespace(self)
            return namespace
        return object.__getattribute__(self, "_real").__dict__

    def __getattr__(self, name: str) -> Any:
        try:
            return self._namespace()[name]
        except KeyError:
            raise AttributeError(f"thread-local has no attribute {name!r} in this thread") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._namespace()[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._namespace()[name]
        except KeyError:
            raise AttributeError(name) from None
