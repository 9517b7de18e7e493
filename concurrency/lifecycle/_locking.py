"""Holding a lifecycle object's state for a wait that only reads it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..sync import Mutex, MutexGuard


@contextmanager
def held_for_waiting(state: Mutex[Any]) -> Iterator[MutexGuard[Any]]:
    """Like `with state.lock()`, but an exception out of the wait does not poison `state`.

    The waits change nothing, so an interrupt (KeyboardInterrupt) cannot leave the
    state half-updated; poisoning would make the object unusable after Ctrl-C.
    """
    guard = state.lock()
    try:
        yield guard
    finally:
        guard.__exit__(None, None, None)  # releases if still held; never poisons
