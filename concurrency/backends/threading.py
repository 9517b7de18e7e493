"""The `threading` backend: the checked reference.

It detects misuse instead of hanging or corrupting, and says what went wrong:

- re-locking a `Mutex`, or re-acquiring an `RwLock` with a blocking or timed
  call, that the thread already holds (which would deadlock; a `try_*` never
  waits, so it just reports the lock's state);
- releasing a guard from a thread other than the one that acquired it;
- using a guard after it was released, and releasing it twice;
- a `Condvar` used with two different mutexes;
- a guard dropped while still held: it is released (as on every backend) and a
  `ResourceWarning` names the lock and the line that acquired it.

This module only binds classes: the native core's with its checks turned on
(`_checked_`) when it is compiled (`NATIVE`), else the pure-Python `Checked*`
classes of `concurrency.backends.pure`, with the same checks and messages. The
error messages of the checks are written here, in Python, and the native core
calls them on its cold paths.

`readerwriterlock.RWLockFair` is the baseline our `RwLock` is measured against
(see `stress/bench_sync.py`); it has no upgradable reads, so it is not the base.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from . import pure
from .native import CORE, bind
from .pure import JoinHandle, _common, current, mutex, sleep, spawn, yield_now

NAME = "threading"

NATIVE: bool = CORE is not None
"""True when the primitives are the native core's; False: the pure-Python fallback."""

# The native core raises its checked errors through these, looked up on this module.
_refuse_relock = mutex._refuse_relock
_refuse_not_owner = _common.refuse_not_owner


def _pure_checked() -> SimpleNamespace:
    """The pure-Python classes of this backend: `Checked*` where there is something to check."""
    return SimpleNamespace(
        Mutex=pure.CheckedMutex, MutexGuard=pure.CheckedMutexGuard,
        RwLock=pure.CheckedRwLock, ReadGuard=pure.CheckedReadGuard,
        WriteGuard=pure.CheckedWriteGuard, UpgradableReadGuard=pure.CheckedUpgradableReadGuard,
        Condvar=pure.Condvar, Semaphore=pure.CheckedSemaphore, SemaphoreGuard=pure.CheckedSemaphoreGuard,
        Barrier=pure.Barrier, OnceLock=pure.OnceLock, AtomicInt=pure.AtomicInt,
        AtomicBool=pure.AtomicBool, AtomicRef=pure.AtomicRef, Sender=pure.Sender,
        Receiver=pure.Receiver, channel=pure.channel,
    )


_classes: Any = bind(checked=True) if NATIVE else _pure_checked()

Mutex: type[Any] = _classes.Mutex
MutexGuard: type[Any] = _classes.MutexGuard
Condvar: type[Any] = _classes.Condvar
RwLock: type[Any] = _classes.RwLock
ReadGuard: type[Any] = _classes.ReadGuard
WriteGuard: type[Any] = _classes.WriteGuard
UpgradableReadGuard: type[Any] = _classes.UpgradableReadGuard
Semaphore: type[Any] = _classes.Semaphore
SemaphoreGuard: type[Any] = _classes.SemaphoreGuard
Barrier: type[Any] = _classes.Barrier
OnceLock: type[Any] = _classes.OnceLock
AtomicInt: type[Any] = _classes.AtomicInt
AtomicBool: type[Any] = _classes.AtomicBool
AtomicRef: type[Any] = _classes.AtomicRef
Sender: type[Any] = _classes.Sender
Receiver: type[Any] = _classes.Receiver
channel: Any = _classes.channel

__all__ = [
    "NAME",
    "NATIVE",
    "AtomicBool",
    "AtomicInt",
    "AtomicRef",
    "Barrier",
    "Condvar",
    "JoinHandle",
    "Mutex",
    "MutexGuard",
    "OnceLock",
    "ReadGuard",
    "Receiver",
    "RwLock",
    "Semaphore",
    "SemaphoreGuard",
    "Sender",
    "UpgradableReadGuard",
    "WriteGuard",
    "channel",
    "current",
    "sleep",
    "spawn",
    "yield_now",
]
