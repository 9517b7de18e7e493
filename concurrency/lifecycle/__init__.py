"""`concurrency.lifecycle`: start, cancel, track and shut down threads cleanly.

- `CancellationToken`: a one-way "please stop" flag; threads park on it, derive
  child tokens from it and register `on_cancel` callbacks.
- `TaskTracker`: spawns threads and waits until all of them have finished.
- `Shutdown` and `Subsystem`: a root token, named groups of tasks drained in
  order within deadlines, SIGINT/SIGTERM handling, a watchdog, exit codes.
- `wait_any`: park until one of several tokens, receivers or trackers (or
  `AnyOf`/`AllOf` groups of them) is ready.
- `Service`: a restartable `serve()` loop on its own thread.

Everything is built on the facade (`concurrency.sync`, `concurrency.thread`),
so it runs on real threads and under the model checker alike; only signal
handling and the watchdog, which act on the real process, refuse the model.
See docs/lifecycle.md.
"""

from __future__ import annotations

from .service import Service
from .shutdown import (
    EXIT_CLEAN,
    EXIT_FATAL,
    EXIT_UNCLEAN,
    EXIT_WATCHDOG,
    DrainResult,
    Shutdown,
    Subsystem,
)
from .token import CancelGuard, CancellationToken
from .tracker import TaskTracker
from .wait_any import AllOf, AnyOf, wait_any

__all__ = [
    "EXIT_CLEAN",
    "EXIT_FATAL",
    "EXIT_UNCLEAN",
    "EXIT_WATCHDOG",
    "AllOf",
    "AnyOf",
    "CancelGuard",
    "CancellationToken",
    "DrainResult",
    "Service",
    "Shutdown",
    "Subsystem",
    "TaskTracker",
    "wait_any",
]
