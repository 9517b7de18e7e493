"""The pure-Python primitives behind the real-thread backends, one module per family.

`fast` and `threading` bind these classes (keeping only the C-accelerated
`Mutex` when it is compiled). Each module holds a primitive's unchecked class
and, where the `threading` backend checks more, its `Checked*` variant:

- `mutex`: `Mutex`, `MutexGuard`, `CheckedMutex`, `CheckedMutexGuard`
- `rwlock`: `RwLock` and its three guards, and their `Checked*` variants
- `semaphore`: `Semaphore`, `SemaphoreGuard` and their `Checked*` variants
  (a dropped permit warns)
- `condvar`, `oncelock`, `barrier`, `atomic`, `channel`: one implementation
  each (the Condvar's checks live in the guards it waits with)
- `thread`: `JoinHandle`, `spawn`, `current`, `sleep`, `yield_now`
- `_common`: names, deadlines, and `WaitQueue`, the parking primitive

Every object keeps its state behind one raw lock and parks threads on
`WaitQueue`s, so nothing relies on the GIL: they are correct on free-threaded
CPython too. Async-exception safety (Ctrl-C inside an operation) is
best-effort in pure Python; see `_common`.
"""

from __future__ import annotations

from .atomic import AtomicBool, AtomicInt, AtomicRef
from .barrier import Barrier
from .channel import Receiver, Sender, channel
from .condvar import Condvar
from .mutex import CheckedMutex, CheckedMutexGuard, Mutex, MutexGuard
from .oncelock import OnceLock
from .rwlock import (
    CheckedReadGuard,
    CheckedRwLock,
    CheckedUpgradableReadGuard,
    CheckedWriteGuard,
    ReadGuard,
    RwLock,
    UpgradableReadGuard,
    WriteGuard,
)
from .semaphore import CheckedSemaphore, CheckedSemaphoreGuard, Semaphore, SemaphoreGuard
from .thread import JoinHandle, current, sleep, spawn, yield_now

__all__ = [
    "AtomicBool",
    "AtomicInt",
    "AtomicRef",
    "Barrier",
    "CheckedMutex",
    "CheckedMutexGuard",
    "CheckedReadGuard",
    "CheckedRwLock",
    "CheckedSemaphore",
    "CheckedSemaphoreGuard",
    "CheckedUpgradableReadGuard",
    "CheckedWriteGuard",
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
