"""The metaclass behind every facade class.

`Mutex(1)` on the facade builds `implementation().Mutex(1)`: the backend
class subclasses the facade one, so `isinstance` and type hints keep working,
and every later method call goes straight to the backend's code.
"""

from __future__ import annotations

from typing import Any

from .backends import implementation


class FacadeMeta(type):
    """Calling a facade class (not a backend subclass) builds the backend's class."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "_facade_" in cls.__dict__:
            backend_cls = getattr(implementation(), cls.__name__)
            return backend_cls(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class Facade(metaclass=FacadeMeta):
    """Base of the facade classes; a class that sets `_facade_` in its body dispatches."""

    __slots__ = ()
