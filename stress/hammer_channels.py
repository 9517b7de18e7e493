"""Hammer the real-thread channels from many threads and check what comes out.

    python stress/hammer_channels.py [--backend fast|threading] [--producers N]
                                     [--messages N] [--seed N] [--rounds N]

Scenarios, each run `--rounds` times for an unbounded channel and bounded ones
(bound 1, 4, and 0: a rendezvous):

- deliver: producers (clones of one Sender) send tagged messages while two
  consumers share the Receiver, receiving with recv, try_recv and
  recv_timeout at random; each producer closes its Sender when done. Every
  message must arrive exactly once, each consumer must see each producer's
  messages in the order they were sent, and both consumers must end with
  Disconnected once every sender is closed and the channel is drained.
- ping-pong: two threads bounce a counter through two channels with plain
  recv(), so a lost wakeup hangs (and is reported);
- bounded: a bounded channel never holds more than its bound, and a rendezvous
  send returns only once a receiver took that message (checked by the only
  consumer: sends that returned, less messages it took, never exceed the bound).
- close: the receiver closes while producers are sending or blocked on a full
  channel; every producer ends with Disconnected and none hangs.

Exit status 0 when every check held, 1 otherwise. Nothing here measures time:
timeouts only turn a hang into a report.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType
from typing import Any

import _bench  # also puts the checkout on sys.path

from concurrency.sync import Disconnected, Empty

JOIN_TIMEOUT = 120.0
BOUNDS: tuple[int | None, ...] = (None, 1, 4, 0)


def run_all(bodies: Sequence[Callable[[], None]], what: str) -> None:
    """Run each body on its own thread; report a hang or re-raise the first failure."""
    errors: list[BaseException] = []

    def wrap(body: Callable[[], None]) -> None:
        try:
            body()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(body,), daemon=True) for body in bodies]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sum(thread.is_alive() for thread in threads)
    if stuck:
        raise AssertionError(f"{what}: {stuck} threads still blocked after {JOIN_TIMEOUT}s")
    if errors:
        raise errors[0]


def _label(bound: int | None) -> str:
    return "channel()" if bound is None else f"sync_channel({bound})"


# --------------------------------------------------------------------------- deliver


def _receive_one(receiver: Any, rng: random.Random) -> Any:
    """One message by a randomly chosen call; raises Disconnected at the end."""
    while True:
        how = rng.random()
        try:
            if how < 0.6:
                return receiver.recv()
            if how < 0.8:
                return receiver.try_recv()
            return receiver.recv_timeout(0.001)
        except (Empty, TimeoutError):
            continue


def scenario_deliver(module: ModuleType, bound: int | None, producers: int, messages: int,
                     seed: int) -> str:
    sender, receiver = module.channel(bound, "hammered")
    senders = [sender] + [sender.clone() for _ in range(producers - 1)]
    got: list[list[tuple[int, int]]] = [[], []]

    def producer(index: int) -> Callable[[], None]:
        def body() -> None:
            with senders[index] as mine:
                for seq in range(messages):
                    mine.send((index, seq))

        return body

    def consumer(index: int) -> Callable[[], None]:
        rng = random.Random(seed * 10 + index)

        def body() -> None:
            while True:
                try:
                    got[index].append(_receive_one(receiver, rng))
                except Disconnected:
                    return

        return body

    run_all([producer(i) for i in range(producers)] + [consumer(0), consumer(1)],
            f"deliver {_label(bound)}")
    everything = sorted(got[0] + got[1])
    expected = [(p, s) for p in range(producers) for s in range(messages)]
    if everything != expected:
        missing = len(set(expected) - set(everything))
        extra = len(everything) - len(set(everything))
        raise AssertionError(f"deliver {_label(bound)}: {missing} lost, {extra} duplicated")
    for index, seen in enumerate(got):
        last = [-1] * producers
        for producer_index, seq in seen:
            if seq <= last[producer_index]:
                raise AssertionError(f"deliver {_label(bound)}: consumer {index} saw producer "
                                     f"{producer_index}'s message {seq} after {last[producer_index]}")
            last[producer_index] = seq
    return f"{_label(bound)}: {len(everything)} messages, split {len(got[0])}/{len(got[1])}"


# --------------------------------------------------------------------------- ping-pong


def scenario_ping_pong(module: ModuleType, bound: int | None, trips: int) -> str:
    """Two threads bounce a counter with plain recv(): a lost wakeup hangs here."""
    ping_tx, ping_rx = module.channel(bound, "ping")
    pong_tx, pong_rx = module.channel(bound, "pong")

    def pinger() -> None:
        with ping_tx:
            for i in range(trips):
                ping_tx.send(i)
                if pong_rx.recv() != i + 1:
                    raise AssertionError(f"ping-pong {_label(bound)}: wrong reply to {i}")

    def ponger() -> None:
        with pong_tx:
            for value in ping_rx:
                pong_tx.send(value + 1)

    run_all([pinger, ponger], f"ping-pong {_label(bound)}")
    return f"{_label(bound)}: {trips} round trips"


# --------------------------------------------------------------------------- bounded


def scenario_bounded(module: ModuleType, bound: int, producers: int, messages: int) -> str:
    sender, receiver = module.channel(bound, "bounded")
    senders = [sender] + [sender.clone() for _ in range(producers - 1)]
    count_lock = threading.Lock()
    completed = [0]  # sends that returned
    taken = [0]  # messages the consumer received
    worst = [0]

    def producer(index: int) -> Callable[[], None]:
        def body() -> None:
            with senders[index] as mine:
                for seq in range(messages):
                    mine.send((index, seq))
                    with count_lock:
                        completed[0] += 1

        return body

    def consumer() -> None:
        for _ in receiver:
            with count_lock:
                taken[0] += 1
                # The only consumer has recorded every message taken so far, so sends
                # that returned, less those, is at most what is inside right now.
                worst[0] = max(worst[0], completed[0] - taken[0])
            if random.random() < 0.01:
                time.sleep(0)

    run_all([producer(i) for i in range(producers)] + [consumer], f"bounded {bound}")
    if taken[0] != producers * messages:
        raise AssertionError(f"bounded {bound}: {taken[0]} of {producers * messages} arrived")
    if worst[0] > bound:
        what = "a send returned before its message was taken" if bound == 0 else "inside at once"
        raise AssertionError(f"bounded {bound}: {worst[0]} messages {what}")
    return f"{_label(bound)}: at most {worst[0]} inside (bound {bound})"


# --------------------------------------------------------------------------- close


def scenario_close(module: ModuleType, bound: int | None, producers: int, seed: int) -> str:
    sender, receiver = module.channel(bound, "closing")
    senders = [sender] + [sender.clone() for _ in range(producers - 1)]
    outcomes: list[str] = []
    record = threading.Lock()
    rng = random.Random(seed)

    def producer(index: int) -> Callable[[], None]:
        def body() -> None:
            sent = 0
            try:
                while True:
                    senders[index].send(sent)
                    sent += 1
                    if sent > 1_000_000:
                        raise AssertionError("close: a sender was never refused")
            except Disconnected:
                with record:
                    outcomes.append("disconnected")

        return body

    def closer() -> None:
        for _ in range(rng.randrange(1, 200)):
            try:
                receiver.recv_timeout(1.0)
            except TimeoutError:
                break
        receiver.close()
        try:
            receiver.recv()
        except Disconnected:
            return
        raise AssertionError("close: recv on a closed receiver did not raise Disconnected")

    run_all([producer(i) for i in range(producers)] + [closer], f"close {_label(bound)}")
    if outcomes != ["disconnected"] * producers:
        raise AssertionError(f"close {_label(bound)}: {outcomes}")
    return f"{_label(bound)}: {producers} producers refused after close"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _bench.add_hammer_options(parser, rounds=2)
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=5_000, help="per producer")
    args = parser.parse_args(argv)
    if args.producers < 1 or args.messages < 1 or args.rounds < 1:
        parser.error("--producers, --messages and --rounds must be >= 1")

    def scenarios(module: ModuleType, seed: int) -> list[tuple[str, Callable[[], str]]]:
        found: list[tuple[str, Callable[[], str]]] = []
        for bound in BOUNDS:
            messages = args.messages if bound != 0 else max(1, args.messages // 10)
            found.append(("deliver", partial(
                scenario_deliver, module, bound, args.producers, messages, seed)))
            found.append(("ping-pong", partial(scenario_ping_pong, module, bound, messages)))
            if bound is not None:
                found.append(("bounded", partial(
                    scenario_bounded, module, bound, args.producers, messages)))
            found.append(("close", partial(scenario_close, module, bound, args.producers, seed)))
        return found

    return _bench.run_hammer("hammer_channels", args, scenarios)

if __name__ == "__main__":
    sys.exit(main())
