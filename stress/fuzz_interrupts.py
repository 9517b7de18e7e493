"""The long interrupt fuzzer: KeyboardInterrupt at random moments into every primitive.

    python stress/fuzz_interrupts.py [--shots N] [--rounds R] [--seed S] [--only a,b]

Runs every scenario of `tests/interrupt_fuzz.py` `--rounds` times with `--shots`
interrupts each (seed S, S+1, ...), on the backend `CONCURRENCY_BACKEND` names,
and prints the interrupts delivered and the inconsistencies found. Exit status 1
if any invariant was violated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [_ROOT, os.path.join(_ROOT, "tests")]

from interrupt_fuzz import SCENARIOS  # noqa: E402

import concurrency  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=2000, help="interrupts per scenario round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every scenario")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first round")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or sorted(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {sorted(SCENARIOS)}")
    print(f"backend {concurrency.backend()}, Python {sys.version.split()[0]}, "
          f"GIL {'on' if getattr(sys, '_is_gil_enabled', lambda: True)() else 'off'}")
    total_shots = total_ops = 0
    failures: list[str] = []
    started = time.monotonic()
    for round_index in range(args.rounds):
        for name in names:
            outcome = SCENARIOS[name](args.shots, args.seed + round_index)
            total_shots += outcome.shots
            total_ops += outcome.operations
            status = "ok" if not outcome.violations else f"VIOLATED: {outcome.violations}"
            print(f"  round {round_index + 1} {name:24} {outcome.shots:6} interrupts "
                  f"{outcome.operations:8} operations  {status}", flush=True)
            failures += [f"{name}: {v}" for v in outcome.violations]
    print(f"{total_shots} interrupts delivered, {total_ops} operations, "
          f"{len(failures)} inconsistencies, {time.monotonic() - started:.0f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
