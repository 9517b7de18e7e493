"""`RwLock` and its guards in pure Python, unchecked and checked.

Everything runs under one raw lock, `_state`, with or without the GIL:

- `_readers` counts the plain readers inside.
- `_token` is the exclusive part: None, `WRITE` (a writer, inside or still
  waiting for the readers to leave) or `UPGRADABLE` (the one upgradable reader,
  which shares the lock with plain readers). Writers and upgradable readers
  queue for it first come, first served, in `_token_q`: each parks on its own
  `WaitQueue`, and a released token wakes the head of the queue only.
- `_writer` is True once the writer holding the token is inside (the readers
  have left); `_upgrading` while the upgradable reader waits for them to leave
  in `upgrade()`. Either keeps every reader out.
- Phase-fair: while a writer waits (`_writers_waiting`), new readers queue in
  `_read_q`. When a writer leaves, `_phase` advances, and the readers that
  queued before it may enter ahead of the next waiting writer, which then waits
  for them in `_drain_q`. That read phase hands out `_passes`, one per queued
  reader: a reader arriving meanwhile may use one that is left, so the waiting
  writer lets at most twice the queued readers in before its turn, and readers
  arriving after the passes ran out queue behind it.
- A guard that exits with an exception poisons the lock: every acquire, and
  every thread parked in one, raises `PoisonError` until `clear_poison()`.
- A guard is created before the lock is taken and attached (`guard._rw`) in the
  critical section that takes it; releasing, `upgrade()` and `downgrade()`
  detach and attach guards in the critical section that changes the state. A
  guard dropped while held releases its lock (like Rust's drop), without
  poisoning; a checked guard also warns with a `ResourceWarning`.

`try_*` report the state and never wait: `try_read` gives a guard when a reader
may enter now (no writer inside or waiting, no upgrade under way),
`try_write` when nobody holds the lock, `try_upgradable_read` when no writer or
upgradable reader holds it or queues for it, whichever thread asks, so a thread
already holding a read guard gets a second one from `try_read`.

`CheckedRwLock` (the `threading` backend's) also records which thread holds
which guards (`_holders`), refuses blocking or timed acquires by a thread that
already holds one (they can deadlock), refuses an `upgrade()` that would wait
for the caller's own read guard, and refuses releases from another thread.

Async-exception safety is best-effort in pure Python (see `_common`): an
interrupted acquire, `upgrade()` or drain takes its place in the queues back
and leaves the lock as it found it.
"""

from __future__ import annotations

import warnings
from collections import deque
from types import TracebackType
from typing import Any

from ... import sync
from ..._errors import check_timeout, raise_poisoned
from ._common import (
    Owned,
    WaitQueue,
    allocate_lock,
    current_thread_name,
    deadline_after,
    get_ident,
    next_name,
    refuse_copy,
    released,
    remaining,
)
from .mutex import acquisition_site, site_text

__all__ = [
    "CheckedReadGuard",
    "CheckedRwLock",
    "CheckedUpgradableReadGuard",
    "CheckedWriteGuard",
    "ReadGuard",
    "RwLock",
    "UpgradableReadGuard",
    "WriteGuard",
]

READ = "read"
WRITE = "write"
UPGRADABLE = "upgradable read"


# --------------------------------------------------------------------------- unchecked


class _Guard:
    """What the three guards share: the lock they hold (None once released)."""

    __slots__ = ("_rw",)
    __reduce__ = refuse_copy
    _rw: RwLock | None
    _mode = ""

    def _attached(self) -> RwLock:
        """The lock this guard holds; refuse if it was released."""
        rw = self._rw
        if rw is None:
            released(type(self).__name__.removeprefix("Checked"))
        return rw

    def unlock(self) -> None:
        self._attached()._release(self, None)

    def __del__(self) -> None:
        rw = getattr(self, "_rw", None)
        if rw is not None:  # dropped while held: released, as Rust's drop does
            rw._drop(self)


class ReadGuard(_Guard, sync.ReadGuard[Any]):
    """Shared access to an `RwLock`'s value until `unlock()` or the end of `with`."""

    __slots__ = ()
    _mode = READ

    @property
    def value(self) -> Any:
        return self._attached()._value

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        rw = self._rw
        if rw is not None:  # a reader never poisons
            rw._release(self, None)


class WriteGuard(_Guard, sync.WriteGuard[Any]):
    """Exclusive access to an `RwLock`'s value until `unlock()`, `downgrade()` or `with` ends."""

    __slots__ = ()
    _mode = WRITE

    @property
    def value(self) -> Any:
        return self._attached()._value

    @value.setter
    def value(self, new: Any) -> None:
        self._attached()._value = new

    def downgrade(self) -> ReadGuard:
        rw = self._attached()
        reader: ReadGuard = rw._new_guard(rw._read_guard, 1)
        rw._downgrade(self, reader)
        return reader

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        rw = self._rw
        if rw is not None:
            rw._release(self, exc if exc_type is not None else None)


class UpgradableReadGuard(_Guard, sync.UpgradableReadGuard[Any]):
    """Shared access that may become exclusive through `upgrade()`."""

    __slots__ = ()
    _mode = UPGRADABLE

    @property
    def value(self) -> Any:
        return self._attached()._value

    def upgrade(self) -> WriteGuard:
        rw = self._attached()
        writer: WriteGuard = rw._new_guard(rw._write_guard, 1)
        rw._upgrade(self, writer)
        return writer

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        rw = self._rw
        if rw is not None:
            rw._release(self, exc if exc_type is not None else None)


class RwLock(sync.RwLock[Any]):
    """Phase-fair readers-writer lock with upgradable reads (see the module docstring)."""

    __slots__ = (
        "_drain_q",
        "_holders",
        "_passes",
        "_phase",
        "_poison",
        "_read_q",
        "_readers",
        "_state",
        "_token",
        "_token_q",
        "_upgrading",
        "_value",
        "_writer",
        "_writers_waiting",
        "name",
    )
    # Guard classes; the checked lock brings its own.
    _read_guard: type[ReadGuard] = ReadGuard
    _write_guard: type[WriteGuard] = WriteGuard
    _upgradable_guard: type[UpgradableReadGuard] = UpgradableReadGuard

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        self._value = value
        self._poison: BaseException | None = None
        self.name = name or next_name("RwLock")
        self._state = allocate_lock()
        self._readers = 0
        self._token: str | None = None
        self._writer = False
        self._upgrading = False
        self._writers_waiting = 0
        self._phase = 0  # write phases ended so far
        self._passes = 0  # readers that may still join the read phase past waiting writers
        self._read_q = WaitQueue()
        self._token_q: deque[WaitQueue] = deque()
        self._drain_q = WaitQueue()
        self._holders: dict[int, list[str]] | None = None  # the checked lock's record

    # -- public API ----------------------------------------------------------------

    def read(self) -> ReadGuard:
        guard = self._new_guard(self._read_guard, 1)
        self._acquire_read(guard, None, True)
        return guard

    def write(self) -> WriteGuard:
        guard = self._new_guard(self._write_guard, 1)
        self._acquire_write(guard, None, True)
        return guard

    def upgradable_read(self) -> UpgradableReadGuard:
        guard = self._new_guard(self._upgradable_guard, 1)
        self._acquire_upgradable(guard, None, True)
        return guard

    def try_read(self) -> ReadGuard | None:
        guard = self._new_guard(self._read_guard, 1)
        return guard if self._acquire_read(guard, None, False) else None

    def try_write(self) -> WriteGuard | None:
        guard = self._new_guard(self._write_guard, 1)
        return guard if self._acquire_write(guard, None, False) else None

    def try_upgradable_read(self) -> UpgradableReadGuard | None:
        guard = self._new_guard(self._upgradable_guard, 1)
        return guard if self._acquire_upgradable(guard, None, False) else None

    def try_read_for(self, seconds: float) -> ReadGuard | None:
        deadline = deadline_after(check_timeout(seconds, "RwLock.try_read_for", allow_none=False))
        guard = self._new_guard(self._read_guard, 1)
        return guard if self._acquire_read(guard, deadline, True) else None

    def try_write_for(self, seconds: float) -> WriteGuard | None:
        deadline = deadline_after(check_timeout(seconds, "RwLock.try_write_for", allow_none=False))
        guard = self._new_guard(self._write_guard, 1)
        return guard if self._acquire_write(guard, deadline, True) else None

    def is_poisoned(self) -> bool:
        return self._poison is not None

    def clear_poison(self) -> None:
        with self._state:
            self._poison = None

    def __repr__(self) -> str:
        with self._state:
            readers, writer, poisoned = self._readers, self._writer, self._poison is not None
        return (f"<RwLock {self.name} readers={readers} writer={writer}"
                f"{', poisoned' if poisoned else ''}>")

    # -- guards --------------------------------------------------------------------

    def _new_guard(self, cls: type[Any], depth: int) -> Any:
        """A fresh guard of `cls`, not attached yet (`depth`: frames up to the caller)."""
        guard: Any = object.__new__(cls)
        guard._rw = None
        return guard

    def _remember(self, guard: Any) -> None:
        """Under `_state`, after attaching `guard`: the checked lock records its holder."""

    def _forget(self, guard: Any) -> None:
        """Under `_state`, after detaching `guard`: the checked lock drops its record."""

    def _release(self, guard: Any, exc: BaseException | None) -> None:
        """Release what `guard` holds; `exc` (when not None) escaped it and poisons."""
        with self._state:
            if guard._rw is not self:  # released by another call meanwhile
                released(type(guard).__name__.removeprefix("Checked"))
            mode = guard._mode
            guard._rw = None
            if mode == READ:
                self._readers -= 1
                if not self._readers and self._drain_q.waiters:
                    self._drain_q.notify(1)  # the token's holder waits for the last reader
            else:
                if mode == WRITE:
                    self._writer = False
                    self._end_write_phase_locked()
                if exc is not None:
                    self._poison_locked(exc)
                self._release_token_locked()
            if self._holders is not None:
                self._forget(guard)

    def _drop(self, guard: Any) -> None:
        """`guard` was dropped while held: release without poisoning."""
        self._release(guard, None)

    # -- readers -------------------------------------------------------------------

    def _enter_read_locked(self, guard: Any, arrived: int | None) -> bool:
        """Under `_state`: let a reader in if it may enter now (`arrived`: the phase it
        queued in, None for a newcomer), attaching `guard`.

        Ahead of a waiting writer go the readers queued before the last write phase
        ended, and newcomers while that read phase has passes left (each takes one).
        """
        if self._writer or self._upgrading:
            return False
        if self._writers_waiting:
            queued_before = arrived is not None and arrived != self._phase
            if not (queued_before or self._passes):
                return False
            if self._passes:
                self._passes -= 1
        self._readers += 1
        guard._rw = self
        if self._holders is not None:
            self._remember(guard)
        return True

    def _acquire_read(self, guard: Any, deadline: float | None, blocking: bool) -> bool:
        with self._state:
            if self._poison is not None:
                raise_poisoned(self)
            if not (self._writer or self._upgrading or self._writers_waiting):
                self._readers += 1  # `_enter_read_locked`, inlined for the common case
                guard._rw = self
                if self._holders is not None:
                    self._remember(guard)
                return True
            if self._enter_read_locked(guard, None):
                return True
            if not blocking:
                return False
            arrived = self._phase
            while True:
                left = remaining(deadline)
                if left == 0.0:
                    return False
                self._read_q.wait(self._state, left)
                if self._poison is not None:
                    raise_poisoned(self)
                if self._enter_read_locked(guard, arrived):
                    return True

    # -- writers -------------------------------------------------------------------

    def _acquire_write(self, guard: Any, deadline: float | None, blocking: bool) -> bool:
        with self._state:
            if self._poison is not None:
                raise_poisoned(self)
            if self._token is None and not self._token_q and not self._readers:
                self._token = WRITE
                self._writer = True
                guard._rw = self
                if self._holders is not None:
                    self._remember(guard)
                return True
            if not blocking:
                return False
            self._writers_waiting += 1  # from now on new readers queue behind us
            have_token = entered = False
            try:
                if not self._wait_for_token_locked(deadline, WRITE):
                    return False
                have_token = True
                if not self._wait_for_readers_locked(deadline):
                    return False
                self._writer = entered = True
                self._passes = 0  # the read phase is over
                guard._rw = self
                if self._holders is not None:
                    self._remember(guard)
                return True
            finally:
                self._writers_waiting -= 1
                if not entered:  # timed out or interrupted: as if we never asked
                    if have_token:
                        self._release_token_locked()
                    self._end_write_phase_locked()  # the readers we held back may go

    def _downgrade(self, writer: Any, reader: Any) -> None:
        """`writer` becomes `reader`, with no writer able to get in between."""
        with self._state:
            if writer._rw is not self:
                released("WriteGuard")
            self._writer = False
            self._readers += 1
            writer._rw, reader._rw = None, self
            if self._holders is not None:
                self._forget(writer)
                self._remember(reader)
            self._end_write_phase_locked()
            self._release_token_locked()

    # -- upgradable readers --------------------------------------------------------

    def _acquire_upgradable(self, guard: Any, deadline: float | None, blocking: bool) -> bool:
        with self._state:
            if self._poison is not None:
                raise_poisoned(self)
            if self._token is not None or self._token_q:
                if not blocking or not self._wait_for_token_locked(deadline, UPGRADABLE):
                    return False
            else:
                self._token = UPGRADABLE
            guard._rw = self
            if self._holders is not None:
                self._remember(guard)
            return True

    def _upgrade(self, upgradable: Any, writer: Any) -> None:
        """`upgradable` waits for the readers to leave, then becomes `writer`."""
        with self._state:
            if upgradable._rw is not self:
                released("UpgradableReadGuard")
            self._upgrading = True  # new readers wait from now on
            try:
                self._wait_for_readers_locked(None)
            except BaseException:  # still the upgradable reader
                self._upgrading = False
                self._read_q.notify_all()  # readers may come in again
                raise
            self._upgrading = False
            self._token = WRITE
            self._writer = True
            upgradable._rw, writer._rw = None, self
            if self._holders is not None:
                self._forget(upgradable)
                self._remember(writer)

    # -- hand-over -----------------------------------------------------------------

    def _wait_for_token_locked(self, deadline: float | None, kind: str) -> bool:
        """Under `_state`: queue until the token is free and it is our turn, then take it
        for `kind`. False when `deadline` passed first; raises PoisonError when the lock
        is poisoned meanwhile.
        """
        turn = WaitQueue()
        self._token_q.append(turn)
        try:
            while True:
                if self._poison is not None:
                    raise_poisoned(self)
                if self._token is None and self._token_q[0] is turn:
                    self._token = kind
                    return True
                left = remaining(deadline)
                if left == 0.0:
                    return False
                turn.wait(self._state, left)
        finally:
            self._token_q.remove(turn)
            if self._token is None and self._token_q:
                self._token_q[0].notify()  # we gave up at the head: the next one's turn

    def _wait_for_readers_locked(self, deadline: float | None) -> bool:
        """Under `_state`, holding the token: wait until no reader is inside; False on timeout."""
        while self._readers:
            left = remaining(deadline)
            if left == 0.0:
                return False
            self._drain_q.wait(self._state, left)
        return True

    def _release_token_locked(self) -> None:
        self._token = None
        if self._token_q:
            self._token_q[0].notify()

    def _end_write_phase_locked(self) -> None:
        """A writer left (or gave up): the readers queued meanwhile may go ahead of the next."""
        self._phase += 1
        waiting = self._passes = len(self._read_q.waiters)
        if waiting:
            self._read_q.notify_all()

    def _poison_locked(self, exc: BaseException) -> None:
        """The token's holder crashed: every thread parked here wakes up to raise."""
        if self._poison is None:
            self._poison = exc
        self._read_q.notify_all()
        for turn in self._token_q:
            turn.notify_all()


# --------------------------------------------------------------------------- checked


class _CheckedGuard(Owned):
    """What the checked guards add: the acquiring thread (`CheckedRwLock` refuses
    releases by others) and where the guard was acquired (for the dropped-guard warning)."""

    __slots__ = ()
    _site: tuple[str, int] | None


class CheckedReadGuard(_CheckedGuard, ReadGuard):
    __slots__ = ("_owner", "_site")


class CheckedWriteGuard(_CheckedGuard, WriteGuard):
    __slots__ = ("_owner", "_site")


class CheckedUpgradableReadGuard(_CheckedGuard, UpgradableReadGuard):
    __slots__ = ("_owner", "_site")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


class CheckedRwLock(RwLock):
    """The RwLock plus a record of which thread holds which guards.

    A thread may hold several guards at once only through `try_*`, which never wait.
    """

    __slots__ = ()
    _read_guard = CheckedReadGuard
    _write_guard = CheckedWriteGuard
    _upgradable_guard = CheckedUpgradableReadGuard

    def __init__(self, value: Any = None, *, name: str | None = None) -> None:
        super().__init__(value, name=name)
        self._holders = {}  # thread ident -> modes of the guards it holds

    def _new_guard(self, cls: type[Any], depth: int) -> Any:
        guard = super()._new_guard(cls, depth)
        guard._owner = get_ident()
        guard._site = acquisition_site(depth + 1)
        return guard

    def _remember(self, guard: Any) -> None:
        assert self._holders is not None
        self._holders.setdefault(guard._owner, []).append(guard._mode)

    def _forget(self, guard: Any) -> None:
        assert self._holders is not None
        modes = self._holders.get(guard._owner)
        if modes is not None and guard._mode in modes:
            modes.remove(guard._mode)
            if not modes:
                del self._holders[guard._owner]

    def _refuse_reentry(self, mode: str) -> None:
        """Refuse a blocking or timed acquire by a thread that already holds the lock."""
        assert self._holders is not None
        modes = self._holders.get(get_ident())
        if modes:
            held = modes[0]
            raise RuntimeError(
                f"{self.name}: {current_thread_name()} asks for a {mode} guard while "
                f"it already holds {_article(held)} {held} guard; that can deadlock (a waiting "
                "writer blocks new readers), so release the first guard, or use "
                "upgradable_read()/upgrade()"
            )

    def _acquire_read(self, guard: Any, deadline: float | None, blocking: bool) -> bool:
        if blocking:
            self._refuse_reentry(READ)
        return super()._acquire_read(guard, deadline, blocking)

    def _acquire_write(self, guard: Any, deadline: float | None, blocking: bool) -> bool:
        if blocking:
            self._refuse_reentry(WRITE)
        return super()._acquire_write(guard, deadline, blocking)

    def _acquire_upgradable(self, guard: Any, deadline: float | None, blocking: bool) -> bool:
        if blocking:
            self._refuse_reentry(UPGRADABLE)
        return super()._acquire_upgradable(guard, deadline, blocking)

    def _release(self, guard: Any, exc: BaseException | None) -> None:
        guard._check_owner("releasing", self.name)
        super()._release(guard, exc)

    def _drop(self, guard: Any) -> None:
        warnings.warn(
            f"a {type(guard).__name__.removeprefix('Checked')} of {self.name} acquired at "
            f"{site_text(guard._site)} was dropped while held; it was released now (use "
            "`with` to release it where you mean to)",
            ResourceWarning,
            stacklevel=2,
        )
        RwLock._release(self, guard, None)  # wherever the collector runs it: no owner check

    def _downgrade(self, writer: Any, reader: Any) -> None:
        writer._check_owner("downgrading", self.name)
        super()._downgrade(writer, reader)

    def _upgrade(self, upgradable: Any, writer: Any) -> None:
        assert self._holders is not None
        upgradable._check_owner("upgrading", self.name)
        if len(self._holders.get(upgradable._owner, ())) > 1:
            raise RuntimeError(
                f"{self.name}: {current_thread_name()} asks to upgrade while it also holds "
                "a read guard; upgrade() waits for every reader to leave, so it would "
                "deadlock: release the read guard first"
            )
        super()._upgrade(upgradable, writer)
