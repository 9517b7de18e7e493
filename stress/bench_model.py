"""Model-checker speed: executions per second on "lock-counter 2x10", against the floor.

The floor is a bare greenlet ping-pong that creates as many greenlets and makes
as many switches per execution as the model does, measured in the same run.
Then memory across many executions must stay flat. Run: python stress/bench_model.py
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc

from greenlet import greenlet, settrace

import concurrency
from concurrency import sync, thread

TARGET_EXECUTIONS_PER_SECOND = 10_000


def lock_counter_2x10() -> None:
    """Two threads, ten `with m.lock(): counter += 1` each."""
    counter = sync.Mutex(0)

    def work() -> None:
        for _ in range(10):
            with counter.lock() as guard:
                guard.value += 1

    first = thread.spawn(work)
    second = thread.spawn(work)
    first.join()
    second.join()
    with counter.lock() as guard:
        assert guard.value == 20


def switches_per_execution(executions: int = 500) -> float:
    """Count the greenlet switches the model makes per execution of the scenario."""
    count = 0

    def tracer(event: str, args: object) -> None:
        nonlocal count
        if event in ("switch", "throw"):
            count += 1

    previous = settrace(tracer)
    try:
        concurrency.check(lock_counter_2x10, strategy="random", iterations=executions, seed=1)
    finally:
        settrace(previous)
    return count / executions


def floor_rate(executions: int, switches: float) -> float:
    """Executions/s of a bare ping-pong with the same greenlets and switches."""
    rounds = max(1, round(switches / 2))

    def one_execution() -> None:
        root = greenlet.getcurrent()
        pong = greenlet(lambda: [root.switch() for _ in range(rounds)])
        side = greenlet(lambda: None)
        for _ in range(rounds):
            pong.switch()
        side.switch()
        pong.switch()

    start = time.perf_counter()
    for _ in range(executions):
        one_execution()
    return executions / (time.perf_counter() - start)


def model_rate(executions: int) -> float:
    start = time.perf_counter()
    concurrency.check(lock_counter_2x10, strategy="random", iterations=executions, seed=7)
    return executions / (time.perf_counter() - start)


def memory_profile(executions: int, checkpoints: int = 10) -> tuple[list[float], float]:
    """Traced memory (KiB) left after each slice of executions, and the peak.

    Flat samples mean nothing outlives its execution; the peak shows that the
    tracing saw the executions' own allocations.
    """
    gc.collect()
    tracemalloc.start()
    samples = []
    per_slice = executions // checkpoints
    for index in range(checkpoints):
        concurrency.check(lock_counter_2x10, strategy="random", iterations=per_slice, seed=index)
        gc.collect()
        samples.append(tracemalloc.get_traced_memory()[0] / 1024)
    peak = tracemalloc.get_traced_memory()[1] / 1024
    tracemalloc.stop()
    return samples, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=20_000)
    parser.add_argument("--memory-executions", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    switches = switches_per_execution()
    model = max(model_rate(args.executions) for _ in range(args.repeats))
    floor = max(floor_rate(args.executions, switches) for _ in range(args.repeats))
    verdict = "PASS" if model >= TARGET_EXECUTIONS_PER_SECOND else "MISS"
    print(f"model checker speed ({os.cpu_count()} cores), lock-counter 2x10 under random")
    print(f"  greenlet switches per execution : {switches:.1f}")
    print(f"  model executions/s              : {model:>10,.0f}   target >= "
          f"{TARGET_EXECUTIONS_PER_SECOND:,}  {verdict}")
    print(f"  bare greenlet floor executions/s: {floor:>10,.0f}")
    print(f"  model / floor                   : {model / floor:>10.2f}x of the floor")
    samples, peak = memory_profile(args.memory_executions)
    growth = samples[-1] - samples[0]
    print(f"memory across {args.memory_executions:,} executions (traced KiB left at each tenth): "
          + ", ".join(f"{s:.1f}" for s in samples) + f"; peak while running {peak:.0f} KiB")
    print(f"  growth first->last slice: {growth:+.0f} KiB "
          f"({'flat' if abs(growth) < 256 else 'GROWING'})")


if __name__ == "__main__":
    main()
