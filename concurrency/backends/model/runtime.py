"""One model execution: simulated threads as greenlets on one OS thread.

Every facade operation calls `Execution.point` before it acts. There the
runtime works out which threads are *enabled* (their next operation can
proceed) and lets the strategy pick one; the pick is a direct greenlet switch,
or no switch at all when the running thread is picked again. Between two
points a thread runs alone, so the model explores interleavings of facade
operations (plain shared variables are not tracked: share state through locks,
atomics or channels).

Two kinds of step are taken without a decision because nothing can observe
their order: a new thread's first run up to its first operation, and `join`
on a thread that has finished. `spawn` is not a point. This keeps DFS counts
exact: every decision is a real choice between conflicting operations.
"""

from __future__ import annotations

import functools
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from greenlet import GreenletExit, greenlet

from .. import execution_state, mark_model_thread
from .scheduler.dfs import Redundant

_PACKAGE_DIR = __file__.rsplit("/backends/", 1)[0]


def _never() -> bool:
    return False


def user_location(frame: Any) -> str:
    """`file:line` of the innermost frame outside this package (where the user called us)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.endswith("contextlib.py"):
            pass  # `with thread.scope()`: report the user's `with` line instead
        elif not filename.startswith(_PACKAGE_DIR) or "/examples/" in filename:
            return f"{filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


class Failure:
    """Why an execution failed: kind is exception, deadlock, poisoned or max_steps."""

    __slots__ = ("error", "kind", "message", "thread")

    def __init__(self, kind: str, message: str, error: BaseException | None = None,
                 thread: str | None = None) -> None:
        self.kind = kind
        self.message = message
        self.error = error
        self.thread = thread

    def signature(self) -> tuple[str, str]:
        """What must stay the same for a shrunk schedule to count as the same failure."""
        return (self.kind, type(self.error).__name__ if self.error is not None else "")


class Event:
    """One traced step: which thread did what to which object, and where."""

    __slots__ = ("detail", "location", "obj", "op", "preempted", "thread")

    def __init__(self, thread: int, op: str, obj: str, location: str, preempted: bool,
                 detail: str = "") -> None:
        self.thread = thread
        self.op = op
        self.obj = obj
        self.location = location
        self.preempted = preempted
        self.detail = detail


class ModelThreadBase:
    """State the runtime keeps per simulated thread (subclassed as the JoinHandle)."""

    __slots__ = (
        "_joined",
        "args",
        "bit",
        "deadline",
        "error",
        "execution",
        "finished",
        "fn",
        "greenlet",
        "id",
        "kwargs",
        "local",
        "locals",
        "name",
        "obj",
        "op",
        "ready",
        "result",
        "spins",
        "yield_mark",
        "yielded",
    )

    def __init__(self, execution: Execution, ident: int, name: str, fn: Callable[..., Any],
                 args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.execution = execution
        self.id = ident
        self.bit = 1 << (ident % 61)
        self.name = name
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.greenlet: Any = None
        self.ready: Callable[[], bool] | None = None
        self.deadline: float | None = None
        self.local = False
        self.yielded = False
        self.spins = 0  # consecutive yields with no other thread run in between
        self.yield_mark = -1
        self.op = "start"
        self.obj: Any = None
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._joined = False
        self.locals: dict[Any, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<model thread {self.name}>"


class Execution:
    """Runs one test body under a strategy, to completion or to the first failure."""

    def __init__(self, strategy: Any, primitives: Any, *, max_steps: int, trace: bool) -> None:
        self.strategy = strategy
        self.primitives = primitives
        self.max_steps = max_steps
        self.tracing = trace
        self.events: list[Event] = []
        self.threads: list[Any] = []
        self.alive: list[Any] = []
        self.unstarted: deque[Any] = deque()
        self.current: Any = None  # the thread whose code runs now
        self.running: Any = None  # the thread that holds the processor (see _pick)
        self.root: Any = None
        self.clock = 0.0
        self.steps = 0
        self.decisions: list[int] = []
        self.preempting: list[bool] = []
        self.strategy_error: Exception | None = None
        self._observe = strategy.observe if getattr(strategy, "tracks_steps", False) else None
        self.preemptions = 0
        self.switches = 0  # times the processor passed to another thread
        self.masks: list[int] = []  # the enabled threads at each decision (replay checks them)
        self.failure: Failure | None = None
        self.tearing_down = False
        self._serial: dict[str, int] = {}

    # -- naming ----------------------------------------------------------------------

    def name_for(self, kind: str, name: str | None) -> str:
        """Deterministic per-execution labels, one per object, so replays print the same trace.

        Unnamed objects are `Mutex#1`, `Mutex#2`...; a given name is used as is the
        first time and becomes `pool.lock#2`, `pool.lock#3`... for further objects
        created with the same name, so two objects never print alike.
        """
        taken = self._serial  # label -> objects that asked for it; "\0kind" -> last number
        if name is None:
            base, key = kind, "\0" + kind
        elif name not in taken:
            taken[name] = 1
            return name
        else:
            base, key = name, name
        number = taken.get(key, 0)
        while True:
            number += 1
            numbered = f"{base}#{number}"
            if numbered not in taken:
                break
        taken[key] = number
        taken[numbered] = 1
        return numbered

    # -- threads -----------------------------------------------------------------------

    def spawn(self, thread_cls: Any, fn: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any], name: str | None) -> Any:
        ident = len(self.threads)
        if name is None:
            name = "main" if ident == 0 else f"{getattr(fn, '__name__', 'thread')}-{ident}"
        thread = thread_cls(self, ident, name, fn, args, kwargs)
        thread.greenlet = greenlet(self._thread_main, parent=self.root)
        self.threads.append(thread)
        self.alive.append(thread)
        self.unstarted.append(thread)
        return thread

    def _thread_main(self) -> None:
        thread = self.current
        started_at = self.steps  # no other thread runs until this one reaches a point
        try:
            thread.result = thread.fn(*thread.args, **thread.kwargs)
        except GreenletExit:
            raise
        except BaseException as exc:
            interrupt = interrupt_in(exc, handled_exceptions=True)
            if interrupt is not None:  # from outside the test: end the execution, re-raised by run
                if self.interrupt is None:
                    self.interrupt = interrupt
                if self.failure is None:
                    self.failure = _INTERRUPTED
                return
            if self.tearing_down:
                return  # unwound by _teardown (maybe wrapped, e.g. by a scope's group)
            thread.error = exc
        if thread.id != 0 and self.steps == started_at:
            # A thread that reached no point ran its whole life in its (decision-free)
            # first step; its end is still observable by `is_finished` and `join(timeout)`.
            # Any other thread ends within its last operation's step, which already
            # interleaves with those observers.
            self.point("exit", thread)
        thread.finished = True
        self.alive.remove(thread)
        if self.tracing:
            outcome = f"raised {thread.error!r}" if thread.error is not None else "returned"
            self.events.append(Event(thread.id, "exit", "", "", False, outcome))
        if thread.id == 0 and thread.error is not None and self.failure is None:
            self.failure = _failure_from_exception(thread)

    # -- the scheduling point ------------------------------------------------------------

    def point(self, op: str, obj: Any, ready: Callable[[], bool] | None = None,
              deadline: float | None = None, local: bool = False) -> bool:
        """A scheduling point before `op` on `obj`; returns False if it timed out.

        `ready` says whether the operation can proceed (None: always); with a
        `deadline` (virtual seconds) the thread may instead time out, which the
        caller handles. `local` steps run without a decision once ready.
        """
        if self.tearing_down:
            self._refuse_after_teardown(obj)
        if sys.exc_info()[1] is not None:  # in an except/finally/__exit__: is it an interrupt?
            self._stop_if_interrupted()
        thread = self.current
        thread.op = op
        thread.obj = obj
        thread.ready = ready
        thread.deadline = deadline
        thread.local = local
        self.steps += 1
        if self.steps > self.max_steps:
            self._fail(Failure("max_steps", f"the execution took more than {self.max_steps} "
                               "steps: a livelock, or raise max_steps", thread=thread.name))
        chosen = self._pick()
        if chosen is not thread:
            if chosen is None:
                self.root.switch()
            else:
                chosen.greenlet.switch()
            if self.tearing_down:
                raise GreenletExit
        # No need to reset thread.ready: it is only read while the thread waits at a point.
        proceeded = ready is None or ready()
        if not proceeded and deadline is not None and deadline > self.clock:
            self.clock = deadline
        if self.tracing and op != "exit":  # _thread_main records how the thread ended
            self._record(thread, op, obj, "" if proceeded else "timed out")
        return proceeded

    def _pick(self) -> Any:
        """Choose the next thread to run, or None (all done, or a failure was recorded).

        `self.running` is the thread that holds the processor for preemption
        accounting: starting a new thread does not take it from the spawner.
        A thread that called `yield_now` is passed over while any thread that
        did not yield can run (spin loops make progress under every strategy).
        """
        if self.failure is not None:
            return None
        observe = self._observe
        if self.unstarted:
            chosen = self.unstarted.popleft()
            self.current = chosen
            if self.running is None:  # the main thread starts holding the processor
                self.running = chosen
            return chosen
        enabled = []
        mask = 0  # which threads are enabled, recorded for replays to check
        timed = None
        yielded = 0
        for thread in self.alive:
            ready = thread.ready
            if ready is None or ready():
                if thread.local:
                    if observe is not None and not self._observed(observe, thread):
                        return None
                    self.current = self.running = thread
                    return thread
                enabled.append(thread)
                mask |= thread.bit
                yielded += thread.yielded
            elif thread.deadline is not None and (timed is None or thread.deadline < timed.deadline):
                timed = thread
        if timed is not None:
            enabled.append(timed)
            enabled.sort(key=_thread_id)
            mask |= timed.bit
        if yielded:
            enabled = self._after_yields(enabled, yielded, timed)
            mask = 0
            for thread in enabled:
                mask |= thread.bit
        if len(enabled) == 1:
            chosen = enabled[0]
            if observe is not None and not self._observed(observe, chosen):
                return None
        elif not enabled:
            if self.alive:
                self.failure = self._deadlock()
            return None
        else:
            running = self.running
            try:
                chosen = self.strategy.choose(enabled, running)
            except Redundant:
                self._prune()
                return None
            except Exception as exc:  # a replay that diverged: stop, re-raised by run()
                self.strategy_error = exc
                self.failure = Failure("strategy", str(exc), exc)
                return None
            self.decisions.append(chosen.id)
            self.masks.append(mask)
            preempted = chosen is not running and running in enabled
            self.preempting.append(preempted)
            if preempted:
                self.preemptions += 1
                if self.tracing:
                    self._preempted_next = True
        chosen.yielded = False
        if chosen is not self.running:
            self.switches += 1
        self.current = self.running = chosen
        return chosen

    @staticmethod
    def _after_yields(enabled: list[Any], yielded: int, timed: Any) -> list[Any]:
        """Threads that called `yield_now` let the others go first.

        They give way to any ready thread that did not yield; to a pending timeout
        only when they spin (yield again with no other thread run in between), so a
        single yield never forces a timeout but a spin loop waiting on a sleeper ends.
        """
        ready_others = len(enabled) - yielded - (timed is not None)
        if ready_others > 0:
            return [t for t in enabled if not t.yielded or t is timed]
        if timed is not None:
            return [t for t in enabled if not (t.yielded and t.spins >= 2)]
        return enabled

    _preempted_next = False
    interrupt: BaseException | None = None  # KeyboardInterrupt & co. from outside, to re-raise
    closed = False  # set once run() has returned
    pruned = False  # DFS cut this execution short: it repeats one already explored

    def _observed(self, observe: Callable[[Any], None], thread: Any) -> bool:
        """Tell a step-tracking strategy (DFS) about a step taken without a decision."""
        try:
            observe(thread)
        except Redundant:
            self._prune()
            return False
        return True

    def _prune(self) -> None:
        self.pruned = True
        self.failure = _PRUNED

    def _refuse_after_teardown(self, obj: Any) -> None:
        """Unwind a thread being torn down; refuse use of this execution's objects later."""
        if self.closed:
            name = getattr(obj, "name", None) or type(obj).__name__
            raise RuntimeError(
                f"{name} belongs to a model execution that has ended; create the objects a test "
                "shares inside the checked function"
            )
        raise GreenletExit

    def _stop_if_interrupted(self) -> None:
        """An interrupt is propagating through this thread's cleanup: end the execution now.

        Cleanup (a scope joining its threads, a guard's `__exit__`) must not go on
        scheduling the test after a Ctrl-C; `run` re-raises the interrupt.
        """
        interrupt = interrupt_in(sys.exc_info()[1])  # type: ignore[arg-type]
        if interrupt is None:
            return
        if self.interrupt is None:
            self.interrupt = interrupt
        self._fail(_INTERRUPTED)

    def _fail(self, failure: Failure) -> None:
        """Record `failure` and hand control back to `run`, which tears everything down."""
        if self.failure is None:
            self.failure = failure
        self.root.switch()
        raise GreenletExit

    # -- running ---------------------------------------------------------------------

    def run(self, fn: Callable[[], Any], thread_cls: Any) -> Failure | None:
        """Run `fn` as the main thread, then every thread it left running; the failure, if any."""
        previous = execution_state.runtime
        if previous is not None and previous.closed:  # left by an interrupt in its cleanup
            previous = None
        self.root = greenlet.getcurrent()
        mark_model_thread(True)
        try:
            execution_state.runtime = self
            self.spawn(thread_cls, fn, (), {}, None)
            while self.failure is None:
                chosen = self._pick()
                if chosen is None:
                    break
                chosen.greenlet.switch()
            if self.failure is None:
                self.failure = self._unobserved_error()
        finally:
            # Uninstall first: an interrupt landing anywhere below must not leave this
            # execution current (its threads keep their own reference to it).
            execution_state.runtime = previous
            try:
                self._teardown()
            finally:  # even when an interrupt lands in the teardown itself
                self.closed = True
                mark_model_thread(previous is not None)
        if self.interrupt is not None:
            interrupt, self.interrupt = self.interrupt, None
            raise interrupt
        if self.strategy_error is not None:
            raise self.strategy_error
        if self.pruned:
            self.failure = None
        return self.failure

    def _unobserved_error(self) -> Failure | None:
        for thread in self.threads:
            if thread.error is not None and not thread._joined:
                return _failure_from_exception(thread)
        return None

    def _teardown(self) -> None:
        """Unwind every suspended thread so no frame of this execution outlives it."""
        self.tearing_down = True
        interrupted: BaseException | None = None
        for thread in self.threads:
            g = thread.greenlet
            if g is not None and g.gr_frame is not None and not g.dead:
                self.current = thread  # guards unwinding in it see their owner
                try:
                    g.throw(GreenletExit)
                except GreenletExit:
                    pass
                except BaseException as exc:  # an interrupt between two unwinds: finish first
                    interrupted = interrupted or exc
            thread.greenlet = None
            thread.locals.clear()
        self.alive.clear()
        self.unstarted.clear()
        if interrupted is not None:
            raise interrupted

    # -- reporting ---------------------------------------------------------------------

    def _deadlock(self) -> Failure:
        """Every unfinished thread is blocked: each one, what it waits for, who holds that.

        The headline names a cycle of threads waiting for each other if there is
        one, else the threads that wait for no other (a notify or message that
        never comes); the lines after it list every blocked thread.
        """
        alive = list(self.alive)
        waits = {}
        for thread in alive:
            what, holders = self.waiting(thread)
            waits[thread] = (what, [h for h in holders if h in alive and h is not thread])
        culprits = _cycle({t: holders for t, (_, holders) in waits.items()}, alive)
        if not culprits:
            culprits = [t for t in alive if not waits[t][1]] or alive
        headline = "deadlock: " + "; ".join(f"{label(t)} waits {waits[t][0]}" for t in culprits)
        width = max(len(label(t)) for t in alive)
        phrase = max(len(what) for what, _ in waits.values()) + len("waits ")
        lines = [headline, "every unfinished thread is blocked:"]
        for thread in alive:
            lines.append(f"  {label(thread).ljust(width)}  {('waits ' + waits[thread][0]).ljust(phrase)}"
                         f"  {self.location_of(thread)}")
        return Failure("deadlock", "\n".join(lines))

    def waiting(self, thread: Any) -> tuple[str, list[Any]]:
        """What blocked `thread` waits for (`for pool.lock held by worker-1`) and the threads
        it waits on; the primitive describes itself (`_waits`) where it can."""
        obj = thread.obj
        describe = getattr(obj, "_waits", None)
        if describe is not None:
            what, holders = describe(thread)
            return what, [holder for holder in holders if holder is not None]
        name = getattr(obj, "name", "") if obj is not None else ""
        return f"in {thread.op} {name}".rstrip(), []

    def location_of(self, thread: Any) -> str:
        if thread is self.current:
            return user_location(sys._getframe(1))
        g = thread.greenlet
        return user_location(g.gr_frame if g is not None else None)

    def _record(self, thread: Any, op: str, obj: Any, detail: str) -> None:
        preempted = self._preempted_next
        self._preempted_next = False
        if isinstance(obj, ModelThreadBase):
            name = label(obj)
        else:
            name = getattr(obj, "name", "") if obj is not None else ""
        if detail == "timed out":
            detail = "(timed out)"
        self.events.append(
            Event(thread.id, op, name, user_location(sys._getframe(2)), preempted, detail)
        )

    def note(self, op: str, obj: Any = None, detail: str = "") -> None:
        """Trace mode: record a step that is not a scheduling point (spawn, exit)."""
        self._record(self.current, op, obj, detail)

    def annotate(self, detail: str) -> None:
        """Trace mode: add to the current thread's last step what it returned (`-> None`) or
        how it went (`(acquired)`, `(notified)`)."""
        if self.events:
            event = self.events[-1]
            event.detail = f"{event.detail} {detail}".strip()

    _origins: dict[int, Any] | None = None  # id(exception) -> the thread that raised it

    def reraising(self, thread: Any) -> None:
        """`thread`'s exception is about to be re-raised in another thread (by `join`):
        remember which thread it came from, so the report names that one."""
        if self._origins is None:
            self._origins = {}
        self._origins.setdefault(id(thread.error), thread)

    def thread_local_namespace(self, key: Any) -> dict[str, Any]:
        namespace: dict[str, Any] = self.current.locals.setdefault(key, {})
        return namespace


_PRUNED = Failure("pruned", "this execution repeats one already explored")
_INTERRUPTED = Failure("interrupted", "interrupted from outside the test")


_TEST_OUTCOMES = {("builtins", "Skipped"), ("_pytest.outcomes", "Skipped"),
                  ("_pytest.outcomes", "XFailed"), ("_pytest.outcomes", "Exit")}
"""pytest.skip/xfail/exit in a test body: the test's verdict on itself, as on real threads."""


def interrupt_in(error: BaseException, *, handled_exceptions: bool = False) -> BaseException | None:
    """The exception in `error` (maybe inside a group) that must end the search as itself, or None.

    KeyboardInterrupt and SystemExit are never the test's verdict; nor is any
    exception raised by a Python signal handler (pytest-timeout's SIGALRM handler
    raises `pytest.fail.Exception` into whatever code runs; others raise
    TimeoutError), nor pytest.skip/xfail/exit. `handled_exceptions`: also look
    at `Exception`s for a signal handler's frame (when a thread dies; a point
    inside an `except` block checks only BaseExceptions, to stay cheap).
    """
    handlers = None
    for leaf in leaves(error):
        if isinstance(leaf, KeyboardInterrupt | SystemExit):
            return leaf
        kind = type(leaf)
        if (kind.__module__, kind.__name__) in _TEST_OUTCOMES:
            return leaf
        if isinstance(leaf, Exception) and not handled_exceptions:
            continue
        if handlers is None:
            handlers = _signal_handler_codes()
            if not handlers:
                return None
        tb = leaf.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code in handlers:
                return leaf
            tb = tb.tb_next
    return None


def _signal_handler_codes() -> set[Any]:
    """The code objects of the Python-level signal handlers installed now."""
    import signal

    codes = set()
    for signum in signal.valid_signals():
        try:
            handler = signal.getsignal(signum)
        except (OSError, ValueError):
            continue
        while isinstance(handler, functools.partial):
            handler = handler.func
        handler = getattr(handler, "__func__", handler)
        code = getattr(handler, "__code__", None)
        if code is None:  # a callable object: its __call__
            call = type(handler).__dict__.get("__call__")
            code = getattr(getattr(call, "__func__", call), "__code__", None)
        if code is not None:
            codes.add(code)
    return codes


def _thread_id(thread: Any) -> int:
    return int(thread.id)


def label(thread: Any) -> str:
    """How reports name `thread`: its name, numbered like objects (`worker#2`) when an
    earlier thread of the execution has the same name, so two threads never print alike."""
    name: str = thread.name
    same = [other for other in thread.execution.threads if other.name == name]
    if len(same) == 1 or same[0] is thread:
        return name
    return f"{name}#{same.index(thread) + 1}"


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (possibly nested) exception groups, or the error itself."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def raised_in(execution: Execution, error: BaseException, default: Any) -> Any:
    """The thread `error` was raised in: where `join` got it from, else `default`."""
    origins = execution._origins
    origin = origins.get(id(error)) if origins else None
    return origin if origin is not None and origin.error is error else default


def _cycle(waits_on: dict[Any, list[Any]], order: list[Any]) -> list[Any]:
    """A cycle of threads each waiting on the next, starting at the earliest; [] if none."""
    state: dict[Any, int] = {}

    def visit(thread: Any, path: list[Any]) -> list[Any]:
        state[thread] = 1
        path.append(thread)
        for other in waits_on[thread]:
            if state.get(other) == 1:
                return path[path.index(other):]
            if other not in state:
                found = visit(other, path)
                if found:
                    return found
        state[thread] = 2
        path.pop()
        return []

    for thread in order:
        if thread not in state:
            found = visit(thread, [])
            if found:
                first = min(range(len(found)), key=lambda i: int(found[i].id))
                return found[first:] + found[:first]
    return []


def _raised(error: BaseException, thread: Any) -> str:
    """`ValueError in thread worker-1: bad input` (the message's first line only)."""
    text = str(error).strip().split("\n", 1)[0]
    return f"{type(error).__name__} in thread {label(thread)}" + (f": {text}" if text else "")


def _failure_from_exception(thread: Any) -> Failure:
    """The failure of `thread` ending with an exception, attributed to the thread that
    raised it: an exception re-raised by `join`, or by `thread.scope()` inside an
    ExceptionGroup, is reported as raised in the thread it came from."""
    from ..._errors import PoisonError

    error = thread.error
    found = leaves(error)
    first = found[0]
    origin = raised_in(thread.execution, first, thread)
    kind = "poisoned" if isinstance(first, PoisonError) else "exception"
    lines = [_raised(first, origin)]
    if first is not error:
        group = f"{type(error).__name__}({str(getattr(error, 'message', ''))!r})"
        lines.append(f"re-raised in thread {label(thread)} inside {group}"
                     + (f" with {len(found) - 1} more:" if len(found) > 1 else ""))
        for other in found[1:]:
            lines.append(f"  {_raised(other, raised_in(thread.execution, other, thread))}")
    elif origin is not thread:
        lines.append(f"re-raised in thread {label(thread)} by join()")
    return Failure(kind, "\n".join(lines), error, label(origin))
