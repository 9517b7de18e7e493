"""The metaclass behind every facade class.

`Mutex(1)` on the facade builds `implementation().Mutex(1)`: the backend
class subclasses the facade one, so `isinstance` and type hints keep working,
and every later method call goes straight to the backend's code.
"""

from __future__ import annotations

from typing import Any

from .backends import implementation

_FACADE_MODULES = frozenset(
    {"concurrency._facade", "concurrency.sync", "concurrency.sync.atomic", "concurrency.thread"}
)


class FacadeMeta(type):
    """Calling a facade class that sets `_facade_` builds the backend's class of that name.

    Classes defined outside the facade modules (the backends' classes) get
    `ImplementationMeta` instead, whose calls are plain C-level construction.
    """

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                **kwargs: Any) -> Any:
        in_facade = namespace.get("__module__") in _FACADE_MODULES
        meta = mcls if in_facade else ImplementationMeta
        return super().__new__(meta, name, bases, namespace, **kwargs)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "_facade_" in cls.__dict__:
            return getattr(implementation(), cls.__name__)(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class ImplementationMeta(FacadeMeta):
    """Metaclass of backend classes: construction is `type.__call__`, nothing added."""

    __call__ = type.__call__


class Facade(metaclass=FacadeMeta):
    """Base of the facade classes; a class that sets `_facade_` in its body dispatches."""

    __slots__ = ()
