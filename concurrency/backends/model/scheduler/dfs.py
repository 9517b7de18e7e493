"""`dfs`: every distinct schedule exactly once, depth first, with sleep sets.

The path is a stack of nodes, one per decision; each execution replays the
stack's prefix and takes the first option at new decisions, then backtracks to
the deepest decision with an untried option. Options list the thread holding
the processor first, so the first execution runs without preemption.

Sleep sets (Godefroid) prune orderings that only commute independent
operations: once option `u` at a node is explored, a later sibling `w` starts
with `u` asleep while the operations run are independent of `u`'s; an
execution whose enabled threads are all asleep repeats one already explored
and is cut short (`Redundant`). Independence is judged on facade operations,
which is sound for data-race-free code (the model's assumption anyway):

- operations on different objects are independent;
- `yield_now`, `sleep` and every timed wait depend on everything (time is shared);
- `join`/`is_finished` on a thread depend on everything that thread does;
- a thread's first run (up to its first operation) is independent of all.

With `preemption_bound`, sleep sets are off and a decision that would exceed
the bound offers only the thread holding the processor.
"""

from __future__ import annotations

from typing import Any

from .base import Strategy

_EVERYTHING = ("everything",)


class NondeterminismError(RuntimeError):
    """The same schedule prefix led to a different set of enabled threads."""


class Redundant(Exception):
    """Every enabled thread is asleep: this execution repeats one already explored."""


def dependency(thread: Any) -> tuple[Any, ...]:
    """What the operation `thread` waits to run touches: (object, thread, joined thread)."""
    if thread.deadline is not None:
        return _EVERYTHING
    obj = thread.obj
    if obj is None:
        return ("start",) if thread.op == "start" else _EVERYTHING
    if getattr(obj, "execution", None) is thread.execution:  # a JoinHandle: that thread
        return (f"thread {obj.id}", thread.id, obj.id)
    # Names are deterministic and unique per execution (`Mutex#1`, a repeated
    # user-given name becomes `pool.lock#2`), so keys recorded in one execution
    # match the replay of its prefix in the next.
    return (obj.name, thread.id, None)


def independent(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if a[0] == "start" or b[0] == "start":
        return True
    if a is _EVERYTHING or b is _EVERYTHING:
        return False
    return a[0] != b[0] and a[2] != b[1] and b[2] != a[1]


class _Node:
    """One decision on the current path."""

    __slots__ = ("asleep", "index", "keys", "options")

    def __init__(self, options: list[int], asleep: dict[int, tuple[Any, ...]],
                 keys: dict[int, tuple[Any, ...]]) -> None:
        self.options = options  # thread ids, in the order they are explored
        self.index = 0
        self.asleep = asleep  # sleeping threads on arrival, with their operations
        self.keys = keys  # the operation each option would run


class DepthFirst(Strategy):
    name = "dfs"
    tracks_steps = True

    def __init__(self, preemption_bound: int | None = None) -> None:
        if preemption_bound is not None and preemption_bound < 0:
            raise ValueError(f"preemption_bound must be >= 0, got {preemption_bound}")
        self.bound = preemption_bound
        self._path: list[_Node] = []
        self._depth = 0
        self._preemptions = 0
        self._asleep: dict[int, tuple[Any, ...]] = {}
        self._done = False
        self._cut_short = False  # this execution was pruned as redundant
        self.pruned = 0

    def start_execution(self) -> None:
        self._cut_short = False
        self._depth = 0
        self._preemptions = 0
        self._asleep = {}

    # -- steps taken without a decision ------------------------------------------------

    def observe(self, thread: Any) -> None:
        """A step the runtime took without asking: wake the threads it may affect."""
        if not self._asleep:
            return
        if thread.id in self._asleep:
            self._cut_short = True
            raise Redundant
        key = dependency(thread)
        self._asleep = {t: k for t, k in self._asleep.items() if independent(k, key)}

    # -- decisions ---------------------------------------------------------------------

    def _ordered(self, enabled: list[Any], current: Any) -> list[Any]:
        if current is None or current not in enabled:
            return enabled
        if self.bound is not None and self._preemptions >= self.bound:
            return [current]
        return [current, *(t for t in enabled if t is not current)]

    def choose(self, enabled: list[Any], current: Any) -> Any:
        candidates = self._ordered(enabled, current)
        use_sleep = self.bound is None
        depth = self._depth
        if depth < len(self._path):
            node = self._path[depth]
            expected = [t.id for t in candidates if not (use_sleep and t.id in node.asleep)]
            if expected != node.options:
                raise NondeterminismError(
                    f"decision {depth + 1} offered threads {expected}, earlier {node.options}: "
                    "the test is not deterministic (it reads the clock, real randomness, or "
                    "state left over from an earlier execution)"
                )
        else:
            asleep = self._asleep if use_sleep else {}
            options = [t.id for t in candidates if t.id not in asleep]
            if not options:
                self.pruned += 1
                self._cut_short = True
                raise Redundant
            keys = {t.id: dependency(t) for t in candidates} if use_sleep else {}
            node = _Node(options, dict(asleep), keys)
            self._path.append(node)
        self._depth = depth + 1
        chosen_id = node.options[node.index]
        chosen = next(t for t in candidates if t.id == chosen_id)
        if use_sleep:
            self._asleep = self._after(node, chosen_id)
        if current is not None and chosen is not current and current in enabled:
            self._preemptions += 1
        return chosen

    def _after(self, node: _Node, chosen_id: int) -> dict[int, tuple[Any, ...]]:
        """The sleep set after running `chosen_id` at `node`."""
        key = node.keys[chosen_id]
        asleep = {t: k for t, k in node.asleep.items() if independent(k, key)}
        for earlier in node.options[: node.index]:
            earlier_key = node.keys[earlier]
            if independent(earlier_key, key):
                asleep[earlier] = earlier_key
        return asleep

    def finish_execution(self, decisions: int) -> bool:
        path = self._path
        if self._depth < len(path) and not self._cut_short:
            # It ended before replaying the prefix it was given: the same decisions led to a
            # shorter run. Dropping the unexplored branches would claim a whole space unseen.
            raise NondeterminismError(
                f"the execution ended after {self._depth} decisions, but the same schedule made "
                f"at least {len(path)} before: the test is not deterministic (it reads the clock, "
                "real randomness, or state left over from an earlier execution)"
            )
        del path[self._depth:]
        while path and path[-1].index + 1 >= len(path[-1].options):
            path.pop()
        if not path:
            self._done = True
            return False
        path[-1].index += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self._done
