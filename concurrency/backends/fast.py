"""The `fast` backend: the production default, with the lowest overhead per operation.

Same semantics as `threading` for correct programs, poisoning included. To keep
the uncontended paths short it skips the checks that cost time on them:

- re-locking a `Mutex` (or re-acquiring an `RwLock`) the thread already holds
  deadlocks instead of raising;
- a guard released from a thread other than the one that acquired it is
  released, not refused.

Still checked here, because they cost nothing on the hot path: using a guard
after it was released, releasing a guard twice, a `Condvar` used with two
different mutexes, and every argument (timeouts, bounds, permits).

This module only binds classes: the native core's (`concurrency.backends.native`,
compiled at install time: atomic against Ctrl-C, correct without the GIL, and
`with m.lock():` about as cheap as `with threading.Lock():`) when it is there,
else the pure-Python fallback in `concurrency.backends.pure`, which behaves the
same with best-effort safety against asynchronous exceptions. `NATIVE` says
which; `CONCURRENCY_PURE_PYTHON=1` forces the pure-Python classes. Threads
(`spawn`, `JoinHandle`) are the pure-Python ones either way.
"""

from __future__ import annotations

from typing import Any

from . import pure
from .native import CORE, bind
from .pure import JoinHandle, current, sleep, spawn, yield_now

NAME = "fast"

NATIVE: bool = CORE is not None
"""True when the primitives are the native core's; False: the pure-Python fallback."""

_classes: Any = bind(checked=False) if NATIVE else pure

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
