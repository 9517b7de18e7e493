"""The namespace a model execution hands to the facade (`implementation()`)."""

from __future__ import annotations

from .sync import (
    AtomicBool,
    AtomicInt,
    AtomicRef,
    Barrier,
    Condvar,
    Mutex,
    MutexGuard,
    OnceLock,
    ReadGuard,
    Receiver,
    RwLock,
    Semaphore,
    SemaphoreGuard,
    Sender,
    UpgradableReadGuard,
    WriteGuard,
    channel,
)
from .thread import JoinHandle, current, sleep, spawn, yield_now

NAME = "model"

__all__ = [
    "NAME",
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
