"""Exception types shared by every backend.

`Panic` derives from `BaseException` on purpose: a crashed thread is a crashed
process, and a plain `except Exception` must not swallow it.
"""

from __future__ import annotations

import sys
import traceback
from types import SimpleNamespace
from typing import Any, NoReturn


class Panic(BaseException):
    """An unrecoverable failure that `except Exception` does not catch."""


class PoisonError(Panic):
    """Raised on every acquire of a lock that a crashed holder left poisoned.

    `lock` is the name of the lock and `original` the exception that escaped
    while it was held (also chained as `__cause__`).
    """

    def __init__(self, lock: str, original: BaseException) -> None:
        super().__init__(
            f"{lock} is poisoned: {type(original).__name__}({original}) escaped while it "
            "was held, so the data it guards may be half-updated; call clear_poison() "
            "once it is known to be consistent"
        )
        self.lock = lock
        self.original = original


class Disconnected(Exception):
    """The other end of a channel is gone: no sender is left, or the receiver closed."""


class Empty(Exception):
    """`try_recv` found no message in an open channel."""


class BrokenBarrierError(RuntimeError):
    """A `Barrier` was aborted, reset or timed out while threads waited on it."""


class IncompleteSearchWarning(UserWarning):
    """A dfs search stopped at its budget before covering the whole schedule space.

    The test passed on every schedule explored, which is not a proof. Under
    pytest, `--concurrency-strict` turns this into a failure.
    """


class ConfigError(ValueError):
    """A setting, such as `CONCURRENCY_BACKEND`, has a value the library does not accept."""


def raise_poisoned(lock: Any) -> NoReturn:
    """Raise `PoisonError` for `lock` (kept out of line so acquire paths stay short)."""
    original = lock._poison
    raise PoisonError(lock.name, original) from original


MAX_TIMEOUT = 1e9
"""Longest wait in seconds (~31 years): longer ones, `inf` included, are capped to it, so
they mean "effectively forever" instead of overflowing the OS timer."""


def check_timeout(seconds: float | None, what: str, *, allow_none: bool = True) -> float | None:
    """Validate a timeout argument: None (when allowed) or a number >= 0, capped at MAX_TIMEOUT."""
    if seconds is None:
        if allow_none:
            return None
        raise TypeError(f"{what}: a timeout in seconds is required, got None")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"{what}: timeout must be a number of seconds, got {seconds!r}")
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(f"{what}: timeout must be >= 0 seconds, got {seconds!r}")
    return min(float(seconds), MAX_TIMEOUT)


def report_unraisable(error: BaseException, message: str, source: object = None) -> None:
    """Report an exception nobody can catch (a callback's, an unjoined thread's).

    It goes to `sys.unraisablehook`, as Python does for `__del__` and weakref
    callbacks. The built-in default hook accepts only the interpreter's own
    argument type, so for it the report is written the way it would write it.
    """
    hook = sys.unraisablehook
    if hook is not sys.__unraisablehook__:
        hook(SimpleNamespace(
            exc_type=type(error), exc_value=error, exc_traceback=error.__traceback__,
            err_msg=message, object=source,
        ))
        return
    stream = sys.stderr
    if stream is None:
        return
    header = f"{message}: {source!r}" if source is not None else f"{message}:"
    print(header, file=stream)
    traceback.print_exception(error, file=stream)
    stream.flush()
