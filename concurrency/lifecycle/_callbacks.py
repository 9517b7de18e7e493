"""Running user callbacks so that one failure neither hides nor stops the others."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .._errors import Panic, report_unraisable


def run_all(callbacks: Iterable[Callable[..., Any]], args: tuple[Any, ...], what: str) -> None:
    """Call every callback with `args`; report each exception and go on with the next.

    `what` names the event in the report ("an on_cancel callback of token X").
    Exceptions go to `sys.unraisablehook`, as Python does for weakref callbacks.
    """
    for callback in callbacks:
        try:
            callback(*args)
        except (Exception, Panic) as error:  # reported, and the others still run
            report_unraisable(error, f"Exception in {what}", callback)
        # Other BaseExceptions (KeyboardInterrupt, SystemExit, a model execution's
        # teardown) are control flow, not a callback's failure: they propagate.
