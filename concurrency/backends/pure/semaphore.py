"""`Semaphore` and `SemaphoreGuard` in pure Python, unchecked and checked.

Permits are counted under the semaphore's raw lock; a released permit wakes
one waiter, and a waiter that gives up after being woken passes the wakeup on.
A guard is created before a permit is taken and attached to the semaphore in
the critical section that takes it, and detached in the one that gives it
back. A guard dropped while it holds its permit gives it back (like Rust's
drop); `CheckedSemaphore` (the `threading` backend's) also warns with a
`ResourceWarning` naming the semaphore and the line that acquired the permit.

Async-exception safety is best-effort in pure Python (see `_common`): an
interrupted acquire takes no permit.
"""

from __future__ import annotations

import warnings
from types import TracebackType
from typing import Any

from ... import sync
from ..._errors import check_timeout
from ._common import WaitQueue, allocate_lock, deadline_after, next_name, refuse_copy, remaining
from .mutex import acquisition_site, site_text

__all__ = ["CheckedSemaphore", "CheckedSemaphoreGuard", "Semaphore", "SemaphoreGuard"]


class SemaphoreGuard(sync.SemaphoreGuard):
    """One permit, given back by `unlock()` or at the end of `with`."""

    __slots__ = ("_semaphore",)
    __reduce__ = refuse_copy
    _semaphore: Semaphore | None

    def unlock(self) -> None:
        semaphore = self._semaphore
        if semaphore is None:
            raise RuntimeError("this Semaphore permit was already released")
        semaphore._give_back(self)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        semaphore = self._semaphore
        if semaphore is not None:
            semaphore._give_back(self)

    def __del__(self) -> None:
        semaphore = getattr(self, "_semaphore", None)
        if semaphore is not None:  # dropped while holding its permit: given back
            semaphore._drop(self)


class Semaphore(sync.Semaphore):
    """A pool of permits; `acquire` parks while none is free."""

    __slots__ = ("_lock", "_permits", "_queue", "name")
    _guard_class: type[SemaphoreGuard] = SemaphoreGuard

    def __init__(self, permits: int, *, name: str | None = None) -> None:
        if isinstance(permits, bool) or not isinstance(permits, int) or permits < 0:
            raise ValueError(f"Semaphore: permits must be an int >= 0, got {permits!r}")
        self._permits = permits
        self._lock = allocate_lock()
        self._queue = WaitQueue()
        self.name = name or next_name("Semaphore")

    def acquire(self) -> SemaphoreGuard:
        guard = self._new_guard(1)
        self._take(guard, None, True)
        return guard

    def try_acquire(self) -> SemaphoreGuard | None:
        guard = self._new_guard(1)
        return guard if self._take(guard, None, False) else None

    def try_acquire_for(self, seconds: float) -> SemaphoreGuard | None:
        timeout = check_timeout(seconds, "Semaphore.try_acquire_for", allow_none=False)
        guard = self._new_guard(1)
        return guard if self._take(guard, deadline_after(timeout), True) else None

    def available(self) -> int:
        with self._lock:
            return self._permits

    # -- internals -----------------------------------------------------------------

    def _new_guard(self, depth: int) -> Any:
        """A fresh guard holding no permit yet (`depth`: frames up to the caller)."""
        guard: Any = object.__new__(self._guard_class)
        guard._semaphore = None
        return guard

    def _take(self, guard: SemaphoreGuard, deadline: float | None, blocking: bool) -> bool:
        """Take a permit for `guard` (waiting if `blocking`, until `deadline`); True if taken."""
        with self._lock:
            while self._permits == 0:
                if not blocking:
                    return False
                left = remaining(deadline)
                if left == 0.0:
                    return False
                self._queue.wait(self._lock, left)
            self._permits -= 1
            guard._semaphore = self
            return True

    def _give_back(self, guard: SemaphoreGuard) -> None:
        with self._lock:
            if guard._semaphore is not self:  # given back by another call meanwhile
                raise RuntimeError("this Semaphore permit was already released")
            guard._semaphore = None
            self._permits += 1
            self._queue.notify(1)

    def _drop(self, guard: SemaphoreGuard) -> None:
        """`guard` was dropped while holding its permit: give it back."""
        self._give_back(guard)


class CheckedSemaphoreGuard(SemaphoreGuard):
    """A permit that remembers where it was acquired, for the dropped-guard warning."""

    __slots__ = ("_site",)
    _site: tuple[str, int] | None


class CheckedSemaphore(Semaphore):
    """The Semaphore whose dropped permits warn with a `ResourceWarning`."""

    __slots__ = ()
    _guard_class = CheckedSemaphoreGuard

    def _new_guard(self, depth: int) -> Any:
        guard = super()._new_guard(depth)
        guard._site = acquisition_site(depth + 1)
        return guard

    def _drop(self, guard: SemaphoreGuard) -> None:
        site = site_text(guard._site)  # type: ignore[attr-defined]  # a checked guard
        warnings.warn(
            f"a permit of {self.name} acquired at {site} was dropped while held; it was "
            "given back now (use `with s.acquire():` to give it back where you mean to)",
            ResourceWarning,
            stacklevel=2,
        )
        super()._drop(guard)
