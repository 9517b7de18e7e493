"""A three-stage threaded pipeline that shuts down in order on SIGTERM or SIGINT.

    source --numbers--> square --squares--> sink

Each stage is a subsystem of one `Shutdown`. On a signal the root token is
cancelled: the source stops producing and closes its channel; the square
stage finishes what it was given, then closes its own; the sink totals
everything and ends when its input disconnects. `drain()` waits for them in
that order and the program prints one line per subsystem, then checks that
nothing produced was lost, then exits with `Shutdown.exit_code()`.

It prints `ready` once everything runs. Knobs, used by the end-to-end tests:

- `PIPELINE_HANG=1`: plant a task that ignores cancellation. The drain of
  `square` names it; the interpreter cannot exit while it runs, so the
  watchdog dumps every stack and exits with `EXIT_WATCHDOG` (3).
- `PIPELINE_CRASH=N`: the square stage raises after N items: fatal, exit 1.
- `PIPELINE_DEADLINE` (default 2) and `PIPELINE_WATCHDOG` (default 10): seconds.
"""

from __future__ import annotations

import os
import sys

from concurrency import sync
from concurrency.lifecycle import CancellationToken, Shutdown
from concurrency.sync import Disconnected, Receiver, Sender
from concurrency.sync.atomic import AtomicInt


def produce(token: CancellationToken, numbers: Sender[int], produced: AtomicInt) -> None:
    """Send 0, 1, 2, ... about every millisecond until the token is cancelled."""
    with numbers:
        n = 0
        while not token.wait(timeout=0.001):
            try:
                numbers.send(n)
            except Disconnected:  # the next stage is gone (it crashed): nothing to feed
                return
            n += 1
            produced.store(n)


def square(numbers: Receiver[int], squares: Sender[int], crash_after: int | None) -> None:
    """Square every number until the input disconnects (it does not watch the token)."""
    with numbers, squares:
        for count, n in enumerate(numbers):
            if crash_after is not None and count >= crash_after:
                raise RuntimeError(f"planted crash after {count} items")
            squares.send(n * n)


def sink(squares: Receiver[int], consumed: AtomicInt, total: AtomicInt) -> None:
    """Count and add up the squares until the input disconnects."""
    with squares:
        for value in squares:
            consumed.fetch_add(1)
            total.fetch_add(value)


def ignore_cancellation() -> None:
    """The planted hang: block forever on a channel nobody will ever send to."""
    keep_open, never = sync.channel(name="never")
    never.recv()
    keep_open.close()


def _seconds(variable: str, default: float) -> float:
    return float(os.environ.get(variable, default))


def main() -> int:
    deadline = _seconds("PIPELINE_DEADLINE", 2.0)
    crash = os.environ.get("PIPELINE_CRASH")

    shutdown = Shutdown(name="pipeline")
    source_stage = shutdown.subsystem("source", deadline=deadline)
    square_stage = shutdown.subsystem("square", deadline=deadline)
    sink_stage = shutdown.subsystem("sink", deadline=deadline)

    numbers_tx, numbers_rx = sync.sync_channel(64, name="numbers")
    squares_tx, squares_rx = sync.sync_channel(64, name="squares")
    produced, consumed, total = AtomicInt(0), AtomicInt(0), AtomicInt(0)

    source_stage.spawn_fatal_on_exit(produce, source_stage.token, numbers_tx, produced)
    square_stage.spawn_fatal_on_exit(
        square, numbers_rx, squares_tx, int(crash) if crash else None, name="square"
    )
    sink_stage.spawn_fatal_on_exit(sink, squares_rx, consumed, total)
    if os.environ.get("PIPELINE_HANG") == "1":
        square_stage.spawn(ignore_cancellation, name="stubborn")

    shutdown.install_signal_handlers()
    shutdown.start_watchdog(_seconds("PIPELINE_WATCHDOG", 10.0))
    print("ready", flush=True)

    shutdown.wait()
    print("shutting down", flush=True)
    for result in shutdown.drain():
        outcome = "clean" if result.clean else "stragglers: " + ", ".join(result.stragglers)
        print(f"drained {result.name}: {outcome}", flush=True)
    for reason in shutdown.fatal_reasons():
        print(f"fatal: {reason}", flush=True)

    n = produced.load()
    expected = sum(i * i for i in range(n))
    print(f"produced {n}, consumed {consumed.load()}, total ok: {total.load() == expected}")
    code = shutdown.exit_code()
    print(f"exit code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
