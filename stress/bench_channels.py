"""Benchmark the real-thread channels against `queue.Queue`, in this one process.

    python stress/bench_channels.py [--repeat N] [--scale X] [--quick]

Both real-thread backends share one channel implementation, so one set of rows
covers `fast` and `threading`. Rows (targets: ping-pong at least 1.5x and bulk
at least 10x `queue.Queue`'s rate):

- ping-pong: two threads bounce one message back and forth through two
  channels, N round trips; reported in ns per round trip;
- bulk: one producer sends N messages, one consumer receives them all;
  reported in messages per second;
- uncontended send+recv on one thread, the cost of the calls themselves;

each for an unbounded channel against `Queue()`, and a bounded one against
`Queue(maxsize=...)` of the same bound.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from typing import Any

from _bench import (
    Row,
    Settings,
    best_wall_times,
    ns_per_op,
    parse_settings,
    print_table,
    run_threads,
    speed_row,
)

from concurrency.backends import fast

PING_PONGS = 10_000  # round trips per round
BULK_MESSAGES = 100_000  # messages per round
UNCONTENDED_LOOPS = 50_000
BULK_BOUND = 64
DONE = object()


def _channel(bound: int | None) -> tuple[Any, Any]:
    sender, receiver = fast.channel(bound, None)
    return sender, receiver


# Each endpoint is adapted to two plain callables, so the timed loops are the same.
Endpoints = tuple[Callable[[Any], None], Callable[[], Any]]


def _ours(bound: int | None) -> Endpoints:
    sender, receiver = _channel(bound)
    return sender.send, receiver.recv


def _queue(bound: int | None) -> Endpoints:
    q: queue.Queue[Any] = queue.Queue(maxsize=bound or 0)
    return q.put, q.get


def _ping_pong(make: Callable[[int | None], Endpoints], bound: int | None,
               trips: int) -> Callable[[], None]:
    def run_once() -> None:
        ping_send, ping_recv = make(bound)
        pong_send, pong_recv = make(bound)

        def pinger() -> None:
            for i in range(trips):
                ping_send(i)
                if pong_recv() != i:
                    raise AssertionError("ping-pong: a reply came back out of order")

        def ponger() -> None:
            for _ in range(trips):
                pong_send(ping_recv())

        run_threads([pinger, ponger])

    return run_once


def _bulk(make: Callable[[int | None], Endpoints], bound: int | None,
          messages: int) -> Callable[[], None]:
    def run_once() -> None:
        send, recv = make(bound)
        received = [0]

        def producer() -> None:
            for i in range(messages):
                send(i)
            send(DONE)

        def consumer() -> None:
            count = 0
            while recv() is not DONE:
                count += 1
            received[0] = count

        run_threads([producer, consumer])
        if received[0] != messages:
            raise AssertionError(f"bulk: {received[0]} of {messages} messages arrived")

    return run_once


def threaded_rows(settings: Settings) -> list[Row]:
    trips = settings.loops(PING_PONGS)
    messages = settings.loops(BULK_MESSAGES)
    runs = {
        "pp_ours_unbounded": _ping_pong(_ours, None, trips),
        "pp_queue_unbounded": _ping_pong(_queue, None, trips),
        "pp_ours_bounded": _ping_pong(_ours, 1, trips),
        "pp_queue_bounded": _ping_pong(_queue, 1, trips),
        "bulk_ours_unbounded": _bulk(_ours, None, messages),
        "bulk_queue_unbounded": _bulk(_queue, None, messages),
        "bulk_ours_bounded": _bulk(_ours, BULK_BOUND, messages),
        "bulk_queue_bounded": _bulk(_queue, BULK_BOUND, messages),
    }
    seconds = best_wall_times(runs, threaded_repeat(settings))
    rows = []
    for kind, label in (("unbounded", "channel()"), ("bounded", "sync_channel(1)")):
        baseline = "Queue()" if kind == "unbounded" else "Queue(maxsize=1)"
        rows.append(speed_row(
            f"ping-pong, {label}", seconds[f"pp_ours_{kind}"] / trips * 1e9,
            seconds[f"pp_queue_{kind}"] / trips * 1e9, baseline, "ns/op", 1.5,
        ))
    for kind, label in (("unbounded", "channel()"), ("bounded", f"sync_channel({BULK_BOUND})")):
        baseline = "Queue()" if kind == "unbounded" else f"Queue(maxsize={BULK_BOUND})"
        rows.append(speed_row(
            f"bulk 1 producer/1 consumer, {label}", messages / seconds[f"bulk_ours_{kind}"],
            messages / seconds[f"bulk_queue_{kind}"], baseline, "ops/s", 10.0,
        ))
    return rows


def threaded_repeat(settings: Settings) -> int:
    """Thread runs are long and vary less than short loops: fewer rounds do."""
    return max(1, (settings.repeat + 1) // 2)


def uncontended_rows(settings: Settings) -> list[Row]:
    sender, receiver = _channel(None)
    bounded_sender, bounded_receiver = _channel(BULK_BOUND)
    namespace: dict[str, Any] = {
        "send": sender.send, "recv": receiver.recv,
        "bsend": bounded_sender.send, "brecv": bounded_receiver.recv,
        "try_recv": receiver.try_recv,
        "q": queue.Queue(), "bq": queue.Queue(maxsize=BULK_BOUND),
    }
    ns = ns_per_op({
        "ours": "send(1); recv()",
        "queue": "q.put(1); q.get()",
        "ours_bounded": "bsend(1); brecv()",
        "queue_bounded": "bq.put(1); bq.get()",
        "ours_try": "send(1); try_recv()",
        "queue_nowait": "q.put_nowait(1); q.get_nowait()",
    }, namespace, settings.loops(UNCONTENDED_LOOPS), settings.repeat)
    return [
        speed_row("send+recv, one thread, channel()", ns["ours"], ns["queue"],
                  "Queue put+get", "ns/op", 1.0),
        speed_row(f"send+recv, one thread, sync_channel({BULK_BOUND})", ns["ours_bounded"],
                  ns["queue_bounded"], f"Queue({BULK_BOUND}) put+get", "ns/op", 1.0),
        speed_row("send+try_recv, one thread, channel()", ns["ours_try"], ns["queue_nowait"],
                  "put_nowait+get_nowait", "ns/op", 1.0),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(__doc__.splitlines()[0], argv)
    print_table("Channels (two threads)", threaded_rows(settings), settings,
                repeat=threaded_repeat(settings))
    print_table("Channels (one thread, uncontended)", uncontended_rows(settings), settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
