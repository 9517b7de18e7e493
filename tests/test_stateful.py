"""Hypothesis state machines: channels and RwLock against sequential models.

Each rule performs one non-blocking operation (or a blocking one whose model
says it cannot block) and compares the outcome with a plain-Python model. The
RwLock guards are held by "actor" threads, one guard per actor, because the
checked backend refuses a thread a second guard of a lock it already holds.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sync_helpers import real_threads_only

from concurrency import sync

pytestmark = real_threads_only

MACHINE_SETTINGS = settings(max_examples=100, stateful_step_count=40, deadline=None)
NO_BLOCK_SECONDS = 5.0  # an operation the model says cannot block must finish by then


class Boom(Exception):
    pass


# --------------------------------------------------------------------------- channels


class ChannelMachine(RuleBasedStateMachine):
    """One channel, several sender handles, one receiver; all on this thread."""

    def __init__(self) -> None:
        super().__init__()
        self.items: deque[int] = deque()
        self.senders: list[list[Any]] = []  # [handle, is_open]
        self.receiver_closed = False
        self.next_value = 0
        self.bound: int | None = None

    @initialize(bound=st.sampled_from([None, 1, 2, 3]))
    def open_channel(self, bound: int | None) -> None:
        self.bound = bound
        tx, self.rx = sync.channel() if bound is None else sync.sync_channel(bound)
        self.senders.append([tx, True])

    def _sender(self, index: int) -> list[Any]:
        return self.senders[index % len(self.senders)]

    def _disconnected(self) -> bool:
        return not any(is_open for _, is_open in self.senders)

    def _would_block(self, entry: list[Any]) -> bool:
        is_open = entry[1]
        full = self.bound is not None and len(self.items) >= self.bound
        return is_open and not self.receiver_closed and full

    @rule(index=st.integers(0, 7))
    def send(self, index: int) -> None:
        entry = self._sender(index)
        if self._would_block(entry):
            return
        value = self.next_value
        self.next_value += 1
        if not entry[1] or self.receiver_closed:
            with pytest.raises(sync.Disconnected):
                entry[0].send(value)
        else:
            entry[0].send(value)
            self.items.append(value)

    @rule(index=st.integers(0, 7))
    def clone(self, index: int) -> None:
        handle, is_open = self._sender(index)
        if not is_open:
            with pytest.raises(sync.Disconnected):
                handle.clone()
            return
        self.senders.append([handle.clone(), True])

    @rule(index=st.integers(0, 7))
    def close_sender(self, index: int) -> None:
        entry = self._sender(index)
        entry[0].close()
        entry[1] = False

    def _expect_receive(self, receive: Callable[[], Any], when_empty: type[BaseException]) -> None:
        if self.receiver_closed:
            with pytest.raises(sync.Disconnected):
                receive()
        elif self.items:
            assert receive() == self.items.popleft()
        elif self._disconnected():
            with pytest.raises(sync.Disconnected):
                receive()
        else:
            with pytest.raises(when_empty):
                receive()

    @rule()
    def try_recv(self) -> None:
        self._expect_receive(self.rx.try_recv, sync.Empty)

    @rule()
    def recv_timeout(self) -> None:
        self._expect_receive(lambda: self.rx.recv_timeout(0.0), TimeoutError)

    @precondition(lambda self: self.items or self._disconnected() or self.receiver_closed)
    @rule()
    def recv(self) -> None:
        self._expect_receive(self.rx.recv, AssertionError)  # the model says it cannot block

    @precondition(lambda self: self._disconnected() or self.receiver_closed)
    @rule()
    def drain_by_iteration(self) -> None:
        expected = [] if self.receiver_closed else list(self.items)
        assert list(self.rx) == expected
        self.items.clear()

    @rule()
    def close_receiver(self) -> None:
        self.rx.close()
        self.receiver_closed = True
        self.items.clear()


TestChannelMachine = ChannelMachine.TestCase
TestChannelMachine.settings = MACHINE_SETTINGS


# --------------------------------------------------------------------------- RwLock


class Actor:
    """A thread that runs the callables it is given, one at a time, and reports back."""

    def __init__(self, name: str) -> None:
        self._requests: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self._results: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (request := self._requests.get()) is not None:
            try:
                self._results.put((True, request()))
            except BaseException as exc:  # handed back to the caller
                self._results.put((False, exc))

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on this actor's thread; return its result or raise its exception."""
        self._requests.put(fn)
        try:
            ok, outcome = self._results.get(timeout=NO_BLOCK_SECONDS)
        except queue.Empty:
            raise AssertionError(f"{self._thread.name} blocked in an operation") from None
        if not ok:
            raise outcome
        return outcome

    def stop(self) -> None:
        self._requests.put(None)
        self._thread.join(NO_BLOCK_SECONDS)


ACTORS = 3
actor_ids = st.integers(0, ACTORS - 1)


class RwLockMachine(RuleBasedStateMachine):
    """try_*/blocking acquires, releases, upgrade/downgrade and poisoning by actors."""

    def __init__(self) -> None:
        super().__init__()
        self.rw = sync.RwLock(0, name="machine")
        self.value = 0
        self.actors = [Actor(f"actor-{i}") for i in range(ACTORS)]
        self.held: list[str | None] = [None] * ACTORS
        self.guards: list[Any] = [None] * ACTORS
        self.poisoned = False

    # -- the model ------------------------------------------------------------------

    def _count(self, mode: str) -> int:
        return sum(1 for held in self.held if held == mode)

    def _may(self, mode: str) -> bool:
        writers = self._count("write")
        if mode == "read":
            return writers == 0
        if mode == "upgradable":
            return writers == 0 and self._count("upgradable") == 0
        return all(held is None for held in self.held)

    def _acquire(self, actor: int, mode: str, attempt: Callable[[], Any], can_fail: bool) -> None:
        if self.poisoned:
            with pytest.raises(sync.PoisonError):
                self.actors[actor].call(attempt)
            return
        guard = self.actors[actor].call(attempt)
        if self._may(mode):
            assert guard is not None, f"{mode} refused; held: {self.held}"
            assert guard.value == self.value
            self.held[actor], self.guards[actor] = mode, guard
        else:
            assert can_fail, "a blocking acquire was allowed to block"
            assert guard is None, f"{mode} granted beside {self.held}"

    # -- acquires -------------------------------------------------------------------

    @precondition(lambda self: None in self.held)
    @rule(actor=actor_ids, kind=st.sampled_from(["try_read", "try_read_for", "try_write",
                                                 "try_write_for", "try_upgradable_read"]))
    def try_acquire(self, actor: int, kind: str) -> None:
        if self.held[actor] is not None:
            return
        mode = {"try_read": "read", "try_read_for": "read", "try_write": "write",
                "try_write_for": "write", "try_upgradable_read": "upgradable"}[kind]
        method = getattr(self.rw, kind)
        attempt = (lambda: method(0.001)) if kind.endswith("_for") else method
        self._acquire(actor, mode, attempt, can_fail=True)

    @rule(actor=actor_ids, mode=st.sampled_from(["read", "write", "upgradable"]))
    def blocking_acquire(self, actor: int, mode: str) -> None:
        if self.held[actor] is not None or not (self.poisoned or self._may(mode)):
            return
        method = {"read": self.rw.read, "write": self.rw.write,
                  "upgradable": self.rw.upgradable_read}[mode]
        self._acquire(actor, mode, method, can_fail=False)

    # -- while holding ----------------------------------------------------------------

    @rule(actor=actor_ids, new=st.integers(0, 100))
    def write_value(self, actor: int, new: int) -> None:
        if self.held[actor] != "write":
            return
        guard = self.guards[actor]
        self.actors[actor].call(lambda: setattr(guard, "value", new))
        self.value = new

    @rule(actor=actor_ids)
    def release(self, actor: int) -> None:
        guard = self.guards[actor]
        if guard is None:
            return
        self.actors[actor].call(guard.unlock)
        self.held[actor] = self.guards[actor] = None
        with pytest.raises(RuntimeError):
            self.actors[actor].call(guard.unlock)

    @rule(actor=actor_ids)
    def crash_inside(self, actor: int) -> None:
        guard, mode = self.guards[actor], self.held[actor]
        if guard is None:
            return

        def crash() -> None:
            with guard:
                raise Boom

        with pytest.raises(Boom):
            self.actors[actor].call(crash)
        self.held[actor] = self.guards[actor] = None
        if mode in ("write", "upgradable"):
            self.poisoned = True

    @rule(actor=actor_ids)
    def upgrade(self, actor: int) -> None:
        if self.held[actor] != "upgradable" or self._count("read"):
            return  # with plain readers inside, upgrade() would wait for them
        guard = self.actors[actor].call(self.guards[actor].upgrade)
        assert guard.value == self.value
        self.held[actor], self.guards[actor] = "write", guard

    @rule(actor=actor_ids)
    def downgrade(self, actor: int) -> None:
        if self.held[actor] != "write":
            return
        guard = self.actors[actor].call(self.guards[actor].downgrade)
        assert guard.value == self.value
        self.held[actor], self.guards[actor] = "read", guard

    @rule()
    def clear_poison(self) -> None:
        self.rw.clear_poison()
        self.poisoned = False

    @invariant()
    def poison_flag_matches(self) -> None:
        assert self.rw.is_poisoned() == self.poisoned

    def teardown(self) -> None:
        for actor, guard in zip(self.actors, self.guards, strict=True):
            if guard is not None:
                actor.call(guard.unlock)
            actor.stop()


TestRwLockMachine = RwLockMachine.TestCase
TestRwLockMachine.settings = MACHINE_SETTINGS
