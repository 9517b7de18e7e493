"""Timing helpers shared by the benchmark scripts in this folder.

Every figure is the best (minimum time, so maximum rate) of several repeats,
because on a shared machine other processes only ever make a run slower. Each
row compares our primitive with a baseline measured in the same process, a
moment earlier or later, and prints the ratio; nothing here asserts on time.
A row's verdict (PASS/MISS) is printed for people, and the exit status stays 0.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Make `import concurrency` work when a script is run straight from a checkout.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@dataclass(frozen=True)
class Settings:
    """How hard to measure: `repeat` runs per figure, `scale` multiplies loop counts."""

    repeat: int
    scale: float

    def loops(self, n: int) -> int:
        return max(1, int(n * self.scale))


def parse_settings(description: str, argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--repeat", type=int, default=15, help="rounds per figure; the best one counts (default 15)"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every loop count by this (default 1.0)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 3 rounds at a tenth of the loop counts"
    )
    args = parser.parse_args(argv)
    if args.quick:
        return Settings(repeat=3, scale=0.1)
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    if not args.scale > 0:
        parser.error(f"--scale must be > 0, got {args.scale}")
    return Settings(repeat=args.repeat, scale=args.scale)


def machine_summary() -> str:
    """One line saying what the figures were measured on."""
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = cores
    return (
        f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{cores} cores ({usable} usable by this process)"
    )


# --------------------------------------------------------------------------- measuring


def ns_per_op(stmts: dict[str, str], namespace: dict[str, Any], number: int,
              repeat: int) -> dict[str, float]:
    """Best time of one execution of each statement, in nanoseconds, timeit-style.

    The statements are timed in rounds, one `number`-loop of each per round, so
    a burst of load from other processes hits ours and the baseline alike.
    """
    timers = {name: timeit.Timer(stmt, globals=namespace) for name, stmt in stmts.items()}
    best = dict.fromkeys(stmts, float("inf"))
    for _ in range(repeat):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(number))
    return {name: seconds / number * 1e9 for name, seconds in best.items()}


def best_wall_times(runs: dict[str, Callable[[], None]], repeat: int) -> dict[str, float]:
    """Best wall-clock seconds of each run (each does the same work every call), in rounds."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run_once in runs.items():
            start = time.perf_counter()
            run_once()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def run_threads(bodies: Sequence[Callable[[], None]], timeout: float = 600.0) -> None:
    """Start one thread per body behind a start barrier, wait for all; re-raise a failure."""
    start = threading.Barrier(len(bodies))
    errors: list[BaseException] = []

    def wrap(body: Callable[[], None]) -> None:
        try:
            start.wait()
            body()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(body,), daemon=True) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"a benchmark thread did not finish within {timeout}s (deadlock?)")
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------- reporting


@dataclass(frozen=True)
class Row:
    """One line of a results table.

    `unit` is "ns/op" (lower is better) or "ops/s" (higher is better). `kind`
    says how the ratio reads: "cost" is ours/baseline time (1.3x = 30% slower),
    "speed" is how many times faster ours is. `target` is the bound the ratio
    should meet (at most, for cost; at least, for speed), or None for a row
    that is only reported.
    """

    name: str
    ours: float
    baseline: float
    baseline_name: str
    unit: str
    kind: str
    target: float | None

    @property
    def ratio(self) -> float:
        lower_is_better = self.unit == "ns/op"
        ours_cost = self.ours if lower_is_better else 1.0 / self.ours
        base_cost = self.baseline if lower_is_better else 1.0 / self.baseline
        return ours_cost / base_cost if self.kind == "cost" else base_cost / ours_cost

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        met = self.ratio <= self.target if self.kind == "cost" else self.ratio >= self.target
        return "PASS" if met else "MISS"

    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{self.kind} {'<=' if self.kind == 'cost' else '>='} {self.target:g}x"


def cost_row(name: str, ours: float, baseline: float, baseline_name: str,
             target: float | None) -> Row:
    """A ns/op row whose ratio is ours/baseline (lower is better)."""
    return Row(name, ours, baseline, baseline_name, "ns/op", "cost", target)


def speed_row(name: str, ours: float, baseline: float, baseline_name: str, unit: str,
              target: float | None) -> Row:
    """A row whose ratio is how many times faster ours is than the baseline."""
    return Row(name, ours, baseline, baseline_name, unit, "speed", target)


def _number(value: float, unit: str) -> str:
    if unit == "ops/s":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def print_table(title: str, rows: Sequence[Row], settings: Settings,
                repeat: int | None = None) -> None:
    """Print `rows` as an aligned table with a header saying how they were measured.

    `repeat` is the number of rounds the rows took the best of, if not `settings.repeat`.
    """
    rounds = settings.repeat if repeat is None else repeat
    print(f"\n== {title}")
    print(f"   {machine_summary()}; best of {rounds} rounds, loop scale {settings.scale:g}")
    header = ("benchmark", "ours", "baseline", "unit", "vs", "ratio", "target", "result")
    lines = [header]
    for row in rows:
        lines.append((
            row.name,
            _number(row.ours, row.unit),
            _number(row.baseline, row.unit),
            row.unit,
            row.baseline_name,
            f"{row.kind} {row.ratio:.2f}x",
            row.target_text(),
            row.verdict,
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {1, 2, 5}
    for index, line in enumerate(lines):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        print("   " + "  ".join(cells).rstrip())
        if index == 0:
            print("   " + "  ".join("-" * width for width in widths))
    verdicts = [row.verdict for row in rows]
    print(
        f"   {verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS, "
        f"{verdicts.count('info')} info "
        "(cost = ours/baseline time; speed = times faster than baseline)"
    )


# --------------------------------------------------------------------------- stress scenarios


def add_hammer_options(parser: argparse.ArgumentParser, rounds: int) -> None:
    """The options every stress script shares: backend, seed, rounds, switch interval."""
    parser.add_argument("--backend", choices=("fast", "threading"), default="fast")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument(
        "--switch-interval", type=float, default=5e-6,
        help="sys.setswitchinterval for the run: tiny values make threads interleave often",
    )


def run_hammer(
    script: str,
    args: argparse.Namespace,
    scenarios_for: Callable[[Any, int], Sequence[tuple[str, Callable[[], str]]]],
) -> int:
    """Run each round's scenarios on the chosen backend; print ok/FAIL lines; exit status."""
    import importlib

    module = importlib.import_module(f"concurrency.backends.{args.backend}")
    sys.setswitchinterval(args.switch_interval)
    failures = 0
    for round_no in range(args.rounds):
        for name, run in scenarios_for(module, args.seed + round_no):
            start = time.perf_counter()
            try:
                detail = run()
            except AssertionError as exc:
                failures += 1
                print(f"FAIL {args.backend} round {round_no + 1} {name}: {exc}")
            else:
                took = time.perf_counter() - start
                print(f"ok   {args.backend} round {round_no + 1} {name}: {detail} ({took:.2f}s)")
    print(f"{script}: {failures} failed" if failures else f"{script}: all checks held")
    return 1 if failures else 0
