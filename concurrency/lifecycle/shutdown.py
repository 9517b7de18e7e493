"""`Shutdown` and `Subsystem`: stop a program's threads in order, within deadlines.

A `Shutdown` owns the root token. Each `Subsystem` owns a child of it and a
`TaskTracker` for its threads. Cancelling the root (a signal, a fatal error,
or `drain()` itself) tells every task to stop at once; `drain()` then waits
for the subsystems one by one, each for at most its own deadline, and
reports which tasks were still running when the deadline passed.

Drain order decides whose end is waited for (and reported) first. Work in
flight is not lost when downstream stages finish by draining their input
(their channel disconnects once the upstream stage has stopped) rather than
by watching the token: see docs/lifecycle.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import sync, thread
from .._errors import check_timeout
from ..sync.atomic import AtomicBool
from .signals import SignalRelay, require_real_process
from .token import CancellationToken
from .tracker import TaskTracker, task_name
from .watchdog import Remaining, start_watchdog_thread

__all__ = [
    "EXIT_CLEAN",
    "EXIT_FATAL",
    "EXIT_UNCLEAN",
    "EXIT_WATCHDOG",
    "DrainResult",
    "FatalFlag",
    "Shutdown",
    "Subsystem",
]

R = TypeVar("R")

EXIT_CLEAN = 0
"""`exit_code()` when nothing fatal happened and every drain was clean."""
EXIT_FATAL = 1
"""`exit_code()` after `report_fatal` (or a task of `spawn_fatal_on_exit` ended early)."""
EXIT_UNCLEAN = 2
"""`exit_code()` when a drain left tasks running past its deadline."""
EXIT_WATCHDOG = 3
"""The status the watchdog exits the process with when the shutdown overruns it."""


@dataclass(frozen=True)
class DrainResult:
    """How one subsystem's drain went; `stragglers` names the tasks running past its deadline."""

    name: str
    stragglers: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when every task had finished by the deadline."""
        return not self.stragglers


class FatalFlag:
    """The fatal flag the subsystems of one `Shutdown` share, with the reasons reported."""

    __slots__ = ("_reasons", "_set")

    def __init__(self) -> None:
        self._set = AtomicBool(False)
        self._reasons: sync.Mutex[list[str]] = sync.Mutex([], name="FatalFlag.reasons")

    def report(self, reason: str) -> None:
        with self._reasons.lock() as guard:
            guard.value.append(reason)
            self._set.store(True)

    def is_set(self) -> bool:
        return self._set.load()

    def reasons(self) -> list[str]:
        with self._reasons.lock() as guard:
            return list(guard.value)


class Subsystem:
    """A named group of tasks with its own token (a child of `root`) and tracker.

    Normally made by `Shutdown.subsystem(name, deadline=...)`.
    """

    def __init__(
        self,
        name: str,
        root: CancellationToken,
        *,
        deadline: float | None = None,
        fatal: FatalFlag | None = None,
    ) -> None:
        self.name = name
        self.deadline = check_timeout(deadline, f"Subsystem {name!r} deadline")
        self.token = root.child_token(name=f"{name}.token")
        self.tracker = TaskTracker(name=f"{name}.tracker")
        self._root = root
        self._fatal = fatal if fatal is not None else FatalFlag()

    def spawn(
        self, fn: Callable[..., R], *args: Any, name: str | None = None, **kwargs: Any
    ) -> thread.JoinHandle[R]:
        """Run `fn(*args, **kwargs)` as a tracked task of this subsystem."""
        return self.tracker.spawn(fn, *args, name=name, **kwargs)

    def spawn_fatal_on_exit(
        self, fn: Callable[..., R], *args: Any, name: str | None = None, **kwargs: Any
    ) -> thread.JoinHandle[R]:
        """Like `spawn`, for a task that must run until this subsystem's token is cancelled.

        If it returns or raises before then, that is reported as fatal and the
        root is cancelled: the whole program shuts down. Its exception, if
        any, still reaches `join()`.
        """
        if not callable(fn):
            raise TypeError(f"Subsystem.spawn_fatal_on_exit: {fn!r} is not callable")
        label = task_name(fn) if name is None else name

        def run_until_cancelled(*args: Any, **kwargs: Any) -> R:
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                self._fatal_if_running(f"task {label!r} raised {error!r} while it should run")
                raise
            self._fatal_if_running(f"task {label!r} returned while it should run")
            return result

        return self.tracker.spawn(run_until_cancelled, *args, name=label, **kwargs)

    def _fatal_if_running(self, reason: str) -> None:
        if not self.token.is_cancelled():
            self.report_fatal(reason)

    def report_fatal(self, reason: str) -> None:
        """Record `reason` as fatal and cancel the root: the whole program shuts down."""
        self._fatal.report(f"{self.name}: {reason}")
        self._root.cancel()

    def drain(self, deadline: float | None = None) -> DrainResult:
        """Cancel this subsystem, close its tracker and wait for its tasks.

        Waits at most `deadline` seconds (default: the subsystem's own
        deadline; None there means no limit) and names the tasks still running.
        """
        timeout = self.deadline if deadline is None else check_timeout(deadline, "Subsystem.drain")
        self.token.cancel()
        self.tracker.close()
        _, stragglers = self.tracker._await_idle(timeout)
        return DrainResult(self.name, stragglers)

    def __repr__(self) -> str:
        return f"<Subsystem {self.name} {len(self.tracker)} running>"


class Shutdown:
    """The root of a program's lifecycle: a root token, subsystems, signals and a watchdog.

    Typical main: make subsystems and spawn their tasks, `install_signal_handlers()`,
    `start_watchdog(seconds)`, `wait()` for the root to be cancelled, `drain()`,
    then `sys.exit(exit_code())`.
    """

    def __init__(self, *, name: str = "shutdown") -> None:
        self.name = name
        self.root = CancellationToken(name=f"{name}.root")
        self._fatal = FatalFlag()
        self._subsystems: sync.Mutex[list[Subsystem]] = sync.Mutex([], name=f"{name}.subsystems")
        self._drained = CancellationToken(name=f"{name}.drained")  # an event: drain() returned
        self._unclean = AtomicBool(False)
        self._watchdog_fired = AtomicBool(False)
        self._watchdog_started = AtomicBool(False)
        self._signals: SignalRelay | None = None

    def subsystem(self, name: str, *, deadline: float | None = None) -> Subsystem:
        """A new subsystem; `deadline` bounds its drain (None: wait for as long as it takes)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"Shutdown.subsystem: name must be a non-empty str, got {name!r}")
        subsystem = Subsystem(name, self.root, deadline=deadline, fatal=self._fatal)
        with self._subsystems.lock() as guard:  # nothing may raise in here: it would poison
            taken = any(existing.name == name for existing in guard.value)
            if not taken:
                guard.value.append(subsystem)
        if taken:
            subsystem.token.cancel()  # let go of its registration with the root
            raise ValueError(f"Shutdown.subsystem: there is already a subsystem named {name!r}")
        return subsystem

    def subsystems(self) -> list[Subsystem]:
        """The subsystems, in the order they were created."""
        with self._subsystems.lock() as guard:
            return list(guard.value)

    def wait(self, timeout: float | None = None) -> bool:
        """Park until the root is cancelled; False if `timeout` seconds passed first."""
        return self.root.wait(timeout)

    def drain(self, order: Sequence[str] | None = None) -> list[DrainResult]:
        """Cancel the root, then drain each subsystem in turn, each within its own deadline.

        The order is creation order, or `order` (subsystem names) first and
        the ones it leaves out after, in creation order.
        """
        subsystems = self._in_order(order)
        self.root.cancel()
        results = [subsystem.drain() for subsystem in subsystems]
        if not all(result.clean for result in results):
            self._unclean.store(True)
        self._drained.cancel()
        return results

    def _in_order(self, order: Sequence[str] | None) -> list[Subsystem]:
        subsystems = self.subsystems()
        if order is None:
            return subsystems
        if isinstance(order, str):
            raise TypeError("Shutdown.drain: order must be a list of subsystem names, not a str")
        by_name = {subsystem.name: subsystem for subsystem in subsystems}
        unknown = [name for name in order if name not in by_name]
        if unknown:
            raise ValueError(
                f"Shutdown.drain: no subsystem named {', '.join(map(repr, unknown))}; "
                f"the subsystems are {', '.join(map(repr, by_name)) or 'none'}"
            )
        if len(set(order)) != len(order):
            raise ValueError(f"Shutdown.drain: order names a subsystem twice: {list(order)}")
        rest = [subsystem for subsystem in subsystems if subsystem.name not in order]
        return [by_name[name] for name in order] + rest

    def is_fatal(self) -> bool:
        """True once a subsystem reported a fatal error."""
        return self._fatal.is_set()

    def fatal_reasons(self) -> list[str]:
        """What was reported fatal, each as "subsystem: reason", in order."""
        return self._fatal.reasons()

    def exit_code(self) -> int:
        """The process status this shutdown calls for, the first that applies of:

        `EXIT_WATCHDOG` (the watchdog fired), `EXIT_FATAL` (a fatal error was
        reported), `EXIT_UNCLEAN` (a drain left stragglers), else `EXIT_CLEAN`.
        """
        if self._watchdog_fired.load():
            return EXIT_WATCHDOG
        if self._fatal.is_set():
            return EXIT_FATAL
        if self._unclean.load():
            return EXIT_UNCLEAN
        return EXIT_CLEAN

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM cancel the root; a second one exits at once (status 128 + signal).

        Call it from the main thread; anywhere else it raises `RuntimeError`.
        """
        if self._signals is not None:
            return
        relay = SignalRelay(self.root)
        relay.install()
        self._signals = relay

    def restore_signal_handlers(self) -> None:
        """Put back the handlers `install_signal_handlers()` replaced (main thread only)."""
        relay, self._signals = self._signals, None
        if relay is not None:
            relay.restore()

    def start_watchdog(self, seconds: float) -> None:
        """Bound the whole shutdown: `seconds` after the root is cancelled, it must be over.

        Over means `drain()` returned and every subsystem's tasks finished. If
        not, the watchdog dumps every thread's stack to stderr and exits the
        process with `EXIT_WATCHDOG` (via `os._exit`). Meant for a program's
        main; call it once.
        """
        limit = check_timeout(seconds, "Shutdown.start_watchdog", allow_none=False) or 0.0
        require_real_process("start_watchdog()")
        if self._watchdog_started.swap(True):
            raise RuntimeError(f"{self.name}: start_watchdog() was already called")
        start_watchdog_thread(
            limit,
            trigger=self.root,
            settled=self._settled,
            describe=self._describe_unsettled,
            on_fire=lambda: self._watchdog_fired.store(True),
            exit_code=EXIT_WATCHDOG,
        )

    def _settled(self, remaining: Remaining) -> bool:
        """For the watchdog: wait until drain() returned and every task finished."""
        if not self._drained.wait(remaining()):
            return False
        return all(subsystem.tracker.wait(remaining()) for subsystem in self.subsystems())

    def _describe_unsettled(self) -> str:
        running = [
            f"{subsystem.name}: {', '.join(names)}"
            for subsystem in self.subsystems()
            if (names := subsystem.tracker._running_names())
        ]
        drained = "drain() returned" if self._drained.is_cancelled() else "drain() has not returned"
        still = "; ".join(running) if running else "no tracked task"
        return f"{drained}; still running: {still}"

    def __repr__(self) -> str:
        state = "cancelled" if self.root.is_cancelled() else "running"
        return f"<Shutdown {self.name} {state}, {len(self.subsystems())} subsystems>"
