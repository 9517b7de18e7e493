"""A zoo of classic concurrency bugs, each next to its fix, written with the facade.

Every entry is a pair of zero-argument functions: `<name>` has the bug and
`<name>_fixed` does not. `BUGS` lists them with a one-line description, the
kind of failure the checker reports (`exception`, `deadlock` or `poisoned`),
the symptom it shows and, per strategy, a budget: the number of executions
within which that strategy finds the bug with seed `SEED`. Every fixed version
passes DFS exhaustively.

All shared state goes through facade objects (locks, atomics, channels), so
every access the bug depends on is a scheduling point the checker can
reorder. Plain attributes (a stack node's `below`) are read and written only
right next to the atomic operation that publishes or consumes them, so the
checker's interleavings cover every order in which they can be seen.
Each program is small (two or three threads, a few operations each) so that
DFS covers every schedule of its fix in well under a second.

The execution at which each strategy found each bug, over its budget (seed
`SEED`, pct depth 3), and how many executions DFS needs to cover every
schedule of the fixed version. Budgets for pct and random are at least the
worst case measured over seeds 1 to 100. The numbers are deterministic;
print them with `python -m concurrency.examples.zoo`, and rewrite this table
with `python -m concurrency.examples.zoo --write` (a test keeps it current)::

    bug                      kind             dfs        pct     random  fix: dfs
    -----------------------------------------------------------------------------
    lost_update              exception      2 / 5     3 / 10     1 / 10         2
    atomicity_violation      exception     2 / 10     3 / 25     1 / 40         2
    order_violation          exception      2 / 5     1 / 10     2 / 10         1
    lock_order_deadlock      deadlock       2 / 5     3 / 10     1 / 10         2
    lost_wakeup              deadlock      2 / 10     3 / 40     1 / 20         2
    double_checked_init      exception     3 / 20    29 / 40   14 / 200        16
    aba                      exception     2 / 40    6 / 100   82 / 500        89
    upgrade_deadlock         deadlock      3 / 30     6 / 25     1 / 15         2
    reply_mixup              exception      2 / 5     6 / 20     1 / 10         4
    close_while_send         exception      1 / 5     3 / 10     1 / 25       180
    check_then_act           exception      2 / 5     3 / 10     1 / 10         2
    semaphore_leak           deadlock      1 / 10     2 / 10     1 / 10         6
    barrier_party_missing    deadlock    81 / 500      1 / 5      2 / 5       240
    condvar_if               exception   13 / 100     6 / 50     1 / 50        68
    unjoined_thread          exception      2 / 5     3 / 30     1 / 15         2
    once_racing_set          exception      2 / 5      3 / 5      1 / 5         2
    poisoned_lock            poisoned       2 / 5     1 / 10     2 / 10         2
    rwlock_read_then_write   exception      2 / 5      3 / 5      1 / 5         8

Run one yourself::

    python -m concurrency check concurrency.examples.zoo:lost_wakeup --strategy pct
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from concurrency import sync, thread
from concurrency.sync import atomic

SEED = 1
"""The seed the budgets below and the table above were measured with."""

STRATEGIES = ("dfs", "pct", "random")


def _run_together(*workers: tuple[str, Callable[..., Any], tuple[Any, ...]]) -> list[Any]:
    """Run each `(name, fn, args)` on its own thread; their results, in order."""
    with thread.scope() as scope:
        handles = [scope.spawn(fn, *args, name=name) for name, fn, args in workers]
    return [handle.join() for handle in handles]


# --------------------------------------------------------------------------- lost update


def _increment_load_store(counter: atomic.AtomicInt) -> None:
    value = counter.load()
    counter.store(value + 1)  # another increment may have landed since the load


def _increment_fetch_add(counter: atomic.AtomicInt) -> None:
    counter.fetch_add(1)


def _two_increments(increment: Callable[[atomic.AtomicInt], None]) -> None:
    counter = atomic.AtomicInt(0, name="counter")
    _run_together(("t1", increment, (counter,)), ("t2", increment, (counter,)))
    assert counter.load() == 2, f"lost an update: two increments left counter at {counter.load()}"


def lost_update() -> None:
    """Two threads increment with a separate load and store: one increment is lost."""
    _two_increments(_increment_load_store)


def lost_update_fixed() -> None:
    """Each increment is one atomic read-modify-write (`fetch_add`)."""
    _two_increments(_increment_fetch_add)


# --------------------------------------------------------------------------- atomicity violation


def _move_in_two_steps(a: sync.Mutex[int], b: sync.Mutex[int]) -> None:
    with a.lock() as guard:
        guard.value -= 10
    # The money is in neither account here, and an auditor can look.
    with b.lock() as guard:
        guard.value += 10


def _move_in_one_step(a: sync.Mutex[int], b: sync.Mutex[int]) -> None:
    with a.lock() as from_guard, b.lock() as to_guard:
        from_guard.value -= 10
        to_guard.value += 10


def _audit(a: sync.Mutex[int], b: sync.Mutex[int]) -> int:
    with a.lock() as a_guard, b.lock() as b_guard:
        return a_guard.value + b_guard.value


def _transfer_and_audit(move: Callable[[sync.Mutex[int], sync.Mutex[int]], None]) -> None:
    a = sync.Mutex(50, name="a")
    b = sync.Mutex(50, name="b")
    _, total = _run_together(("transfer", move, (a, b)), ("auditor", _audit, (a, b)))
    assert total == 100, f"the auditor saw {total} in the bank, not 100"


def atomicity_violation() -> None:
    """A transfer debits and credits in two critical sections: an audit in between sees 90."""
    _transfer_and_audit(_move_in_two_steps)


def atomicity_violation_fixed() -> None:
    """The transfer holds both accounts (in the auditor's lock order) for the whole move."""
    _transfer_and_audit(_move_in_one_step)


# --------------------------------------------------------------------------- order violation


def _read_retries(config: atomic.AtomicRef[dict[str, int]]) -> int:
    settings = config.load()
    return settings["retries"]  # TypeError when the worker runs before the config is stored


def order_violation() -> None:
    """The worker starts before the configuration it reads is published."""
    config: atomic.AtomicRef[dict[str, int]] = atomic.AtomicRef(None, name="config")
    worker = thread.spawn(_read_retries, config, name="worker")
    config.store({"retries": 3})
    assert worker.join() == 3


def order_violation_fixed() -> None:
    """Publish the configuration first: spawning orders it before everything the worker does."""
    config: atomic.AtomicRef[dict[str, int]] = atomic.AtomicRef(None, name="config")
    config.store({"retries": 3})
    worker = thread.spawn(_read_retries, config, name="worker")
    assert worker.join() == 3


# --------------------------------------------------------------------------- lock-order deadlock


@dataclass(frozen=True)
class _Account:
    number: int
    balance: sync.Mutex[int]


def _account(number: int) -> _Account:
    return _Account(number, sync.Mutex(10, name=f"account{number}"))


def _pay_source_first(source: _Account, target: _Account) -> None:
    with source.balance.lock() as from_guard, target.balance.lock() as to_guard:
        from_guard.value -= 1
        to_guard.value += 1


def _pay_in_global_order(source: _Account, target: _Account) -> None:
    first, second = sorted((source, target), key=lambda account: account.number)
    with first.balance.lock() as first_guard, second.balance.lock() as second_guard:
        guards = {first.number: first_guard, second.number: second_guard}
        guards[source.number].value -= 1
        guards[target.number].value += 1


def _opposite_payments(pay: Callable[[_Account, _Account], None]) -> None:
    one, two = _account(1), _account(2)
    _run_together(("pay-two", pay, (one, two)), ("pay-one", pay, (two, one)))


def lock_order_deadlock() -> None:
    """Two payments lock their source account first: each holds the lock the other wants."""
    _opposite_payments(_pay_source_first)


def lock_order_deadlock_fixed() -> None:
    """Both payments lock the two accounts in one global order (by account number)."""
    _opposite_payments(_pay_in_global_order)


# --------------------------------------------------------------------------- lost wakeup


def _wait_checking_first(ready: sync.Mutex[bool], changed: sync.Condvar) -> None:
    with ready.lock() as guard:
        is_ready = guard.value
    if not is_ready:
        # The producer may set the flag and notify right here, before we wait.
        with ready.lock() as guard:
            changed.wait(guard)


def _wait_under_one_hold(ready: sync.Mutex[bool], changed: sync.Condvar) -> None:
    with ready.lock() as guard:
        changed.wait_while(guard, lambda is_ready: not is_ready)


def _set_ready(ready: sync.Mutex[bool], changed: sync.Condvar) -> None:
    with ready.lock() as guard:
        guard.value = True
    changed.notify_one()


def _wait_for_ready(wait: Callable[[sync.Mutex[bool], sync.Condvar], None]) -> None:
    ready = sync.Mutex(False, name="ready")
    changed = sync.Condvar(name="changed")
    _run_together(("consumer", wait, (ready, changed)), ("producer", _set_ready, (ready, changed)))


def lost_wakeup() -> None:
    """The consumer checks the flag and waits in two critical sections: the notify falls between."""
    _wait_for_ready(_wait_checking_first)


def lost_wakeup_fixed() -> None:
    """Check and wait under one hold of the mutex (`wait_while`), so no notify can slip by."""
    _wait_for_ready(_wait_under_one_hold)


# --------------------------------------------------------------------------- double-checked init


class _Connection:
    """A resource that is usable only once `open()` has run."""

    def __init__(self) -> None:
        self.is_open = atomic.AtomicBool(False, name="is_open")

    def open(self) -> None:
        self.is_open.store(True)


def _get_connection(slot: atomic.AtomicRef[_Connection], init: sync.Mutex[None],
                    publish_first: bool) -> _Connection:
    connection = slot.load()
    if connection is None:
        with init.lock():
            connection = slot.load()
            if connection is None:
                connection = _Connection()
                if publish_first:
                    slot.store(connection)  # other threads skip the lock and use it now...
                    connection.open()  # ...before it is open
                else:
                    connection.open()
                    slot.store(connection)
    assert connection.is_open.load(), "got a connection that is not open yet"
    return connection


def _two_users(publish_first: bool) -> None:
    slot: atomic.AtomicRef[_Connection] = atomic.AtomicRef(None, name="slot")
    init: sync.Mutex[None] = sync.Mutex(name="init")
    first, second = _run_together(("user1", _get_connection, (slot, init, publish_first)),
                                  ("user2", _get_connection, (slot, init, publish_first)))
    assert first is second, "two connections were created"


def double_checked_init() -> None:
    """Double-checked locking that publishes the object before initializing it."""
    _two_users(publish_first=True)


def double_checked_init_fixed() -> None:
    """Initialize completely, then publish: the fast path only ever sees a ready object."""
    _two_users(publish_first=False)


# --------------------------------------------------------------------------- ABA


class _Node:
    """A stack node; `below` is written only by the thread that owns the node."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.below: _Node | None = None


class _TreiberStack:
    """A lock-free stack whose top is compared by identity of the node (ABA-prone)."""

    def __init__(self, *nodes: _Node) -> None:
        top = None
        for node in reversed(nodes):
            node.below = top
            top = node
        self.top: atomic.AtomicRef[_Node] = atomic.AtomicRef(top, name="top")

    def push(self, node: _Node) -> None:
        while True:
            top = self.top.load()
            node.below = top
            if self.top.compare_exchange(top, node)[0]:
                return

    def pop(self) -> _Node | None:
        while True:
            top = self.top.load()
            if top is None:
                return None
            # If top is popped, and pushed back, between here and the exchange, the
            # exchange still succeeds and installs a stale `below`.
            if self.top.compare_exchange(top, top.below)[0]:
                return top

    def nodes(self) -> list[_Node]:
        found, node = [], self.top.load()
        while node is not None:
            found.append(node)
            node = node.below
        return found


class _StampedStack:
    """The same stack with the top as a fresh (node, version) pair per change: no ABA."""

    def __init__(self, *nodes: _Node) -> None:
        top = None
        for node in reversed(nodes):
            node.below = top
            top = node
        self.top: atomic.AtomicRef[tuple[_Node | None, int]] = atomic.AtomicRef((top, 0), name="top")

    def push(self, node: _Node) -> None:
        while True:
            current = self.top.load()
            node.below, version = current
            if self.top.compare_exchange(current, (node, version + 1))[0]:
                return

    def pop(self) -> _Node | None:
        while True:
            current = self.top.load()
            top, version = current
            if top is None:
                return None
            if self.top.compare_exchange(current, (top.below, version + 1))[0]:
                return top

    def nodes(self) -> list[_Node]:
        found, node = [], self.top.load()[0]
        while node is not None:
            found.append(node)
            node = node.below
        return found


def _pop_one(stack: Any) -> list[_Node]:
    node = stack.pop()
    return [] if node is None else [node]


def _pop_two_push_first_back(stack: Any) -> list[_Node]:
    first, second = stack.pop(), stack.pop()
    if first is not None:
        stack.push(first)  # the node comes back: top is the same object as before
    return [] if second is None else [second]


def _aba(stack_type: Any) -> None:
    stack = stack_type(_Node("A"), _Node("B"))
    held_by_one, held_by_two = _run_together(("popper", _pop_one, (stack,)),
                                             ("recycler", _pop_two_push_first_back, (stack,)))
    everywhere = sorted(node.value for node in [*stack.nodes(), *held_by_one, *held_by_two])
    assert everywhere == ["A", "B"], f"nodes are lost or in two places at once: {everywhere}"


def aba() -> None:
    """ABA on an AtomicRef: a pop's compare-exchange succeeds on a node that left and came back."""
    _aba(_TreiberStack)


def aba_fixed() -> None:
    """A version stamp with every change: the stale compare-exchange fails and retries."""
    _aba(_StampedStack)


# --------------------------------------------------------------------------- upgrade deadlock

_WRITER = -1


class _HandRolledRwLock:
    """A reader count under a mutex; a reader upgrades by waiting to be the only reader.

    The library's `RwLock` refuses a write request from a thread that holds a
    read guard, so this bug needs a lock of one's own to show itself.
    """

    def __init__(self) -> None:
        self._state = sync.Mutex(0, name="readers")  # number of readers, or _WRITER
        self._changed = sync.Condvar(name="readers_changed")

    def read(self) -> None:
        with self._state.lock() as guard:
            self._changed.wait_while(guard, lambda state: state == _WRITER)
            guard.value += 1

    def upgrade(self) -> None:
        with self._state.lock() as guard:
            # Two readers upgrading at once each wait for the other to leave.
            self._changed.wait_while(guard, lambda state: state > 1)
            guard.value = _WRITER

    def release_write(self) -> None:
        with self._state.lock() as guard:
            guard.value = 0
            self._changed.notify_all()


def _refresh_by_upgrading(lock: _HandRolledRwLock, cache: sync.Mutex[int]) -> None:
    lock.read()
    lock.upgrade()
    with cache.lock() as guard:
        guard.value += 1
    lock.release_write()


def _refresh_with_upgradable(rw: sync.RwLock[int]) -> None:
    with rw.upgradable_read() as guard:
        seen = guard.value
        with guard.upgrade() as writer:
            writer.value = seen + 1


def upgrade_deadlock() -> None:
    """Two readers both upgrade to writer: each waits for the other reader to leave."""
    lock = _HandRolledRwLock()
    cache = sync.Mutex(0, name="cache")
    _run_together(("refresh1", _refresh_by_upgrading, (lock, cache)),
                  ("refresh2", _refresh_by_upgrading, (lock, cache)))


def upgrade_deadlock_fixed() -> None:
    """An upgradable read: only one can exist, so two upgraders never wait on each other."""
    rw = sync.RwLock(0, name="cache")
    _run_together(("refresh1", _refresh_with_upgradable, (rw,)),
                  ("refresh2", _refresh_with_upgradable, (rw,)))
    with rw.read() as guard:
        assert guard.value == 2, f"an upgrade was lost: {guard.value}"


# --------------------------------------------------------------------------- channel protocol


def _square_server_shared(requests: sync.Receiver[int], replies: sync.Sender[int]) -> None:
    for _ in range(2):
        number = requests.recv()
        replies.send(number * number)


def _ask_shared(number: int, requests: sync.Sender[int], replies: sync.Receiver[int]) -> None:
    requests.send(number)
    answer = replies.recv()  # the next reply, which may be the other client's
    assert answer == number * number, f"asked for {number} squared, got {answer}"


def reply_mixup() -> None:
    """Two clients share one reply channel: each takes whichever reply comes first."""
    requests_tx, requests_rx = sync.channel(name="requests")
    replies_tx, replies_rx = sync.channel(name="replies")
    _run_together(("server", _square_server_shared, (requests_rx, replies_tx)),
                  *((f"client{n}", _ask_shared, (n, requests_tx, replies_rx)) for n in (2, 3)))


def _square_server(requests: sync.Receiver[tuple[int, sync.Sender[int]]]) -> None:
    for _ in range(2):
        number, reply_to = requests.recv()
        reply_to.send(number * number)


def _ask(number: int, requests: sync.Sender[tuple[int, sync.Sender[int]]]) -> None:
    reply_tx, reply_rx = sync.channel(name=f"reply{number}")
    requests.send((number, reply_tx))
    answer = reply_rx.recv()
    assert answer == number * number, f"asked for {number} squared, got {answer}"


def reply_mixup_fixed() -> None:
    """Every request carries its own reply channel."""
    requests_tx, requests_rx = sync.channel(name="requests")
    _run_together(("server", _square_server, (requests_rx,)),
                  *((f"client{n}", _ask, (n, requests_tx)) for n in (2, 3)))


# --------------------------------------------------------------------------- close while sending


def _answer(answers: sync.Sender[str], answer: str) -> None:
    with answers:
        answers.send(answer)  # Disconnected once the asker has stopped listening


def _answer_if_wanted(answers: sync.Sender[str], answer: str) -> None:
    with answers:
        try:
            answers.send(answer)
        except sync.Disconnected:
            pass  # the asker already has an answer: ours is not needed


def _first_answer(answer: Callable[[sync.Sender[str], str], None]) -> None:
    answers_tx, answers_rx = sync.channel(name="answers")
    with thread.scope() as scope:
        scope.spawn(answer, answers_tx.clone(), "cache", name="cache")
        scope.spawn(answer, answers_tx.clone(), "database", name="database")
        answers_tx.close()
        first = answers_rx.recv()
        answers_rx.close()  # a slower answerer may still be about to send
    assert first in ("cache", "database")


def close_while_send() -> None:
    """The asker closes its receiver after the first answer; the slower sender crashes."""
    _first_answer(_answer)


def close_while_send_fixed() -> None:
    """Senders that race to answer expect the receiver to be gone."""
    _first_answer(_answer_if_wanted)


# --------------------------------------------------------------------------- check-then-act on a map


def _claim_checking_first(names: sync.Mutex[dict[str, str]], name: str, owner: str) -> bool:
    with names.lock() as guard:
        taken = name in guard.value
    if taken:
        return False
    with names.lock() as guard:  # someone may have claimed it since we looked
        guard.value[name] = owner
    return True


def _claim_atomically(names: sync.Mutex[dict[str, str]], name: str, owner: str) -> bool:
    with names.lock() as guard:
        return guard.value.setdefault(name, owner) == owner


def _claim_twice(claim: Callable[[sync.Mutex[dict[str, str]], str, str], bool]) -> None:
    names: sync.Mutex[dict[str, str]] = sync.Mutex({}, name="names")
    won = _run_together(("ann", claim, (names, "admin", "ann")),
                        ("bob", claim, (names, "admin", "bob")))
    assert won.count(True) == 1, f"{won.count(True)} users were told they own 'admin'"


def check_then_act() -> None:
    """Register-if-absent that checks and inserts in separate critical sections."""
    _claim_twice(_claim_checking_first)


def check_then_act_fixed() -> None:
    """Check and insert under one hold (`setdefault`)."""
    _claim_twice(_claim_atomically)


# --------------------------------------------------------------------------- semaphore permit leak


def _job_leaking(pool: sync.Semaphore, cancelled: atomic.AtomicBool) -> None:
    permit = pool.acquire()
    if cancelled.load():
        return  # returns without releasing the permit
    permit.unlock()


def _job_with_block(pool: sync.Semaphore, cancelled: atomic.AtomicBool) -> None:
    with pool.acquire():
        if cancelled.load():
            return


def _cancel_jobs(job: Callable[[sync.Semaphore, atomic.AtomicBool], None]) -> None:
    pool = sync.Semaphore(1, name="pool")
    cancelled = atomic.AtomicBool(False, name="cancelled")
    with thread.scope() as scope:
        scope.spawn(job, pool, cancelled, name="job1")
        scope.spawn(job, pool, cancelled, name="job2")
        cancelled.store(True)


def semaphore_leak() -> None:
    """A job that sees the cancellation returns early and never gives its permit back."""
    _cancel_jobs(_job_leaking)


def semaphore_leak_fixed() -> None:
    """The permit is held in a `with` block: every way out releases it."""
    _cancel_jobs(_job_with_block)


# --------------------------------------------------------------------------- barrier party missing


def _phase_skipping(jobs: sync.Receiver[int], phase_end: sync.Barrier) -> int:
    try:
        job = jobs.try_recv()
    except (sync.Empty, sync.Disconnected):
        return 0  # no job yet: leaves without reaching the barrier the others wait at
    phase_end.wait()
    return job


def _phase_always_arrives(jobs: sync.Receiver[int], phase_end: sync.Barrier) -> int:
    try:
        job = jobs.try_recv()
    except (sync.Empty, sync.Disconnected):
        job = 0  # no job yet: still a party of the barrier
    phase_end.wait()
    return job


def _two_phases(worker: Callable[[sync.Receiver[int], sync.Barrier], int]) -> None:
    jobs_tx, jobs_rx = sync.channel(name="jobs")
    phase_end = sync.Barrier(3, name="phase_end")  # both workers and this thread
    with thread.scope() as scope:
        workers = [scope.spawn(worker, jobs_rx, phase_end, name=f"worker{n}") for n in (1, 2)]
        with jobs_tx:
            jobs_tx.send(1)
            jobs_tx.send(2)
        phase_end.wait()
        done = sum(jobs_rx)  # phase two: finish what the workers did not take
    done += sum(handle.join() for handle in workers)
    assert done == 3, f"jobs were lost: done is {done}"


def barrier_party_missing() -> None:
    """A worker with nothing to do skips the barrier that counts on it."""
    _two_phases(_phase_skipping)


def barrier_party_missing_fixed() -> None:
    """Every party reaches the barrier whatever it found to do."""
    _two_phases(_phase_always_arrives)


# --------------------------------------------------------------------------- condvar `if` for `while`


def _consume_with_if(queue: sync.Mutex[list[int]], nonempty: sync.Condvar) -> int:
    with queue.lock() as guard:
        if not guard.value:
            nonempty.wait(guard)  # woken by notify_all, but another consumer may get there first
        return guard.value.pop(0)


def _consume_with_while(queue: sync.Mutex[list[int]], nonempty: sync.Condvar) -> int:
    with queue.lock() as guard:
        nonempty.wait_while(guard, lambda items: not items)
        return guard.value.pop(0)


def _produce_two(queue: sync.Mutex[list[int]], nonempty: sync.Condvar) -> None:
    for item in (1, 2):
        with queue.lock() as guard:
            guard.value.append(item)
            nonempty.notify_all()


def _two_consumers(consume: Callable[[sync.Mutex[list[int]], sync.Condvar], int]) -> None:
    queue: sync.Mutex[list[int]] = sync.Mutex([], name="queue")
    nonempty = sync.Condvar(name="nonempty")
    got = _run_together(("consumer1", consume, (queue, nonempty)),
                        ("consumer2", consume, (queue, nonempty)),
                        ("producer", _produce_two, (queue, nonempty)))
    assert sorted(got[:2]) == [1, 2]


def condvar_if() -> None:
    """A condition checked with `if`, not `while`: with notify_all both consumers take the item."""
    _two_consumers(_consume_with_if)


def condvar_if_fixed() -> None:
    """Re-check the condition after every wake-up (`wait_while`)."""
    _two_consumers(_consume_with_while)


# --------------------------------------------------------------------------- unjoined thread


def _count_visit_assuming_free(visits: sync.Mutex[int]) -> None:
    guard = visits.try_lock()  # None while the main thread holds the lock
    guard.value += 1  # type: ignore[union-attr]
    guard.unlock()  # type: ignore[union-attr]


def _count_visit(visits: sync.Mutex[int]) -> None:
    with visits.lock() as guard:
        guard.value += 1


def unjoined_thread() -> None:
    """A fire-and-forget thread assumes `try_lock` succeeds; nobody joins it to see it crash."""
    visits = sync.Mutex(0, name="visits")
    thread.spawn(_count_visit_assuming_free, visits, name="background")
    with visits.lock() as guard:
        guard.value += 1


def unjoined_thread_fixed() -> None:
    """The thread blocks for the lock, and is joined so its failures would surface."""
    visits = sync.Mutex(0, name="visits")
    background = thread.spawn(_count_visit, visits, name="background")
    with visits.lock() as guard:
        guard.value += 1
    background.join()
    with visits.lock() as guard:
        assert guard.value == 2


# --------------------------------------------------------------------------- once-init racing set


def _connection_id_set(cell: sync.OnceLock[int], opened: atomic.AtomicInt) -> int:
    connection = cell.get()
    if connection is None:
        connection = opened.fetch_add(1) + 1
        cell.set(connection)  # returns False when another thread won; ignored
    return connection


def _connection_id_get_or_init(cell: sync.OnceLock[int], opened: atomic.AtomicInt) -> int:
    return cell.get_or_init(lambda: opened.fetch_add(1) + 1)


def _share_one_connection(connect: Callable[[sync.OnceLock[int], atomic.AtomicInt], int]) -> None:
    cell: sync.OnceLock[int] = sync.OnceLock(name="connection")
    opened = atomic.AtomicInt(0, name="opened")
    first, second = _run_together(("user1", connect, (cell, opened)),
                                  ("user2", connect, (cell, opened)))
    assert first == second, f"the users ended up on connections {first} and {second}"


def once_racing_set() -> None:
    """Lazy init with `get` then `set`: the loser of the race keeps using its own object."""
    _share_one_connection(_connection_id_set)


def once_racing_set_fixed() -> None:
    """`get_or_init`: exactly one initializer runs and everyone gets its value."""
    _share_one_connection(_connection_id_get_or_init)


# --------------------------------------------------------------------------- poison


def _average_unchecked(samples: sync.Mutex[list[int]]) -> float | None:
    with samples.lock() as guard:
        return sum(guard.value) / len(guard.value)  # ZeroDivisionError before the first sample


def _average(samples: sync.Mutex[list[int]]) -> float | None:
    with samples.lock() as guard:
        return sum(guard.value) / len(guard.value) if guard.value else None


def _report_while_sampling(average: Callable[[sync.Mutex[list[int]]], float | None]) -> None:
    samples: sync.Mutex[list[int]] = sync.Mutex([], name="samples")
    reporter = thread.spawn(average, samples, name="reporter")
    with samples.lock() as guard:  # PoisonError if the reporter crashed while holding it
        guard.value.append(5)
    assert reporter.join() in (None, 5.0)


def poisoned_lock() -> None:
    """A reporter crashes inside its critical section; the lock is poisoned for everyone."""
    _report_while_sampling(_average_unchecked)


def poisoned_lock_fixed() -> None:
    """The reporter handles the empty case instead of raising while holding the lock."""
    _report_while_sampling(_average)


# --------------------------------------------------------------------------- RwLock read then write


def _bump_read_then_write(rw: sync.RwLock[int]) -> None:
    with rw.read() as reader:
        seen = reader.value
    with rw.write() as writer:  # another bump may have written since the read
        writer.value = seen + 1


def _bump_under_write(rw: sync.RwLock[int]) -> None:
    with rw.write() as writer:
        writer.value += 1


def _two_bumps(bump: Callable[[sync.RwLock[int]], None]) -> None:
    hits = sync.RwLock(0, name="hits")
    _run_together(("bump1", bump, (hits,)), ("bump2", bump, (hits,)))
    with hits.read() as guard:
        assert guard.value == 2, f"lost an update: two bumps left hits at {guard.value}"


def rwlock_read_then_write() -> None:
    """Read under a read guard, write the result under a separate write guard: a lost update."""
    _two_bumps(_bump_read_then_write)


def rwlock_read_then_write_fixed() -> None:
    """The whole read-modify-write under one write guard."""
    _two_bumps(_bump_under_write)


# --------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Bug:
    """One zoo entry: the buggy and fixed programs, and what the checker reports on the bug.

    `symptom` names the evidence: for an `exception` or `poisoned` failure the
    type of the exception (possibly inside the scope's `ExceptionGroup`), for a
    `deadlock` the primitive a blocked thread waits on. `dfs`, `pct` and
    `random` are budgets: the number of executions within which that strategy
    finds the bug with seed `SEED`.
    """

    name: str
    buggy: Callable[[], None]
    fixed: Callable[[], None]
    what: str
    kind: str
    symptom: str
    dfs: int
    pct: int
    random: int

    def budget(self, strategy: str) -> int:
        """The execution budget for `strategy` ("dfs", "pct" or "random")."""
        if strategy not in STRATEGIES:
            raise ValueError(f"no budget for strategy {strategy!r}; choose one of {STRATEGIES}")
        budget: int = getattr(self, strategy)
        return budget


BUGS: list[Bug] = [
    Bug("lost_update", lost_update, lost_update_fixed,
        "an increment as a separate atomic load and store",
        "exception", "AssertionError", dfs=5, pct=10, random=10),
    Bug("atomicity_violation", atomicity_violation, atomicity_violation_fixed,
        "a transfer's debit and credit in two critical sections",
        "exception", "AssertionError", dfs=10, pct=25, random=40),
    Bug("order_violation", order_violation, order_violation_fixed,
        "a worker reads a configuration that is published after it starts",
        "exception", "TypeError", dfs=5, pct=10, random=10),
    Bug("lock_order_deadlock", lock_order_deadlock, lock_order_deadlock_fixed,
        "two threads take the same two locks in opposite orders",
        "deadlock", "account", dfs=5, pct=10, random=10),
    Bug("lost_wakeup", lost_wakeup, lost_wakeup_fixed,
        "check a flag, release the lock, then wait: the notify comes in between",
        "deadlock", "changed", dfs=10, pct=40, random=20),
    Bug("double_checked_init", double_checked_init, double_checked_init_fixed,
        "double-checked locking publishes the object before initializing it",
        "exception", "AssertionError", dfs=20, pct=40, random=200),
    Bug("aba", aba, aba_fixed,
        "compare-exchange on a stack top that was popped and pushed back (ABA)",
        "exception", "AssertionError", dfs=40, pct=100, random=500),
    Bug("upgrade_deadlock", upgrade_deadlock, upgrade_deadlock_fixed,
        "two readers upgrade to writer at once and wait for each other",
        "deadlock", "readers_changed", dfs=30, pct=25, random=15),
    Bug("reply_mixup", reply_mixup, reply_mixup_fixed,
        "clients share one reply channel and take each other's replies",
        "exception", "AssertionError", dfs=5, pct=20, random=10),
    Bug("close_while_send", close_while_send, close_while_send_fixed,
        "the receiver closes while a slower sender is about to send",
        "exception", "Disconnected", dfs=5, pct=10, random=25),
    Bug("check_then_act", check_then_act, check_then_act_fixed,
        "insert-if-absent on a map, checked and updated in two critical sections",
        "exception", "AssertionError", dfs=5, pct=10, random=10),
    Bug("semaphore_leak", semaphore_leak, semaphore_leak_fixed,
        "an early return keeps a semaphore permit forever",
        "deadlock", "pool", dfs=10, pct=10, random=10),
    Bug("barrier_party_missing", barrier_party_missing, barrier_party_missing_fixed,
        "a worker with nothing to do skips the barrier the others wait at",
        "deadlock", "phase_end", dfs=500, pct=5, random=5),
    Bug("condvar_if", condvar_if, condvar_if_fixed,
        "a condvar condition checked with if, not while, and two consumers woken by notify_all",
        "exception", "IndexError", dfs=100, pct=50, random=50),
    Bug("unjoined_thread", unjoined_thread, unjoined_thread_fixed,
        "a thread nobody joins crashes because it assumed try_lock succeeds",
        "exception", "AttributeError", dfs=5, pct=30, random=15),
    Bug("once_racing_set", once_racing_set, once_racing_set_fixed,
        "lazy init with get then set: the loser of the race keeps its own value",
        "exception", "AssertionError", dfs=5, pct=5, random=5),
    Bug("poisoned_lock", poisoned_lock, poisoned_lock_fixed,
        "a thread raises inside its critical section and poisons the lock for the others",
        "poisoned", "PoisonError", dfs=5, pct=10, random=10),
    Bug("rwlock_read_then_write", rwlock_read_then_write, rwlock_read_then_write_fixed,
        "read under a read guard, then write the result under a separate write guard",
        "exception", "AssertionError", dfs=5, pct=5, random=5),
]


def found_at(bug: Bug, strategy: str, limit: int = 10_000) -> tuple[int | None, str]:
    """The execution at which `strategy` (seed `SEED`) finds `bug`, and the failure kind."""
    from concurrency.backends.model.api import ScheduleFailure, check

    try:
        check(bug.buggy, strategy, iterations=limit, seed=SEED)
    except ScheduleFailure as failure:
        return failure.iteration, failure.kind
    return None, "none"


def fixed_executions(bug: Bug) -> int | None:
    """How many executions DFS needs to cover every schedule of the fix (None: it fails)."""
    from concurrency.backends.model.api import ScheduleFailure, check

    try:
        report = check(bug.fixed, "dfs")
    except ScheduleFailure:
        return None
    return report.iterations if report.exhausted else None


def table() -> str:
    """The table in this module's docstring, measured afresh."""
    header = f"{'bug':<24} {'kind':<9}" + "".join(f"{name:>11}" for name in STRATEGIES)
    header += f"{'fix: dfs':>10}"
    rows = [header, "-" * len(header)]
    for bug in BUGS:
        cells = []
        for strategy in STRATEGIES:
            iteration, kind = found_at(bug, strategy)
            found = "never" if iteration is None else str(iteration)
            if kind != bug.kind:
                found += "!"  # found, but not the failure the entry expects
            cells.append(f"{found + ' / ' + str(bug.budget(strategy)):>11}")
        covered = fixed_executions(bug)
        cells.append(f"{'FAILS' if covered is None else covered:>10}")
        rows.append(f"{bug.name:<24} {bug.kind:<9}" + "".join(cells))
    return "\n".join(rows)


def rewrite_docstring_table() -> None:
    """Replace the table in this file's docstring with a fresh measurement."""
    from pathlib import Path

    path = Path(__file__)
    source = path.read_text()
    start = source.index("    bug ")
    end = source.index("\n\nRun one yourself::")
    fresh = "\n".join("    " + line for line in table().splitlines())
    path.write_text(source[:start] + fresh + source[end:])


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--write"]:
        rewrite_docstring_table()
    else:
        print(table())
