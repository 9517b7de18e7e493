"""Command line: `python -m concurrency check|replay|demo`.

    python -m concurrency check MODULE:FUNCTION --strategy pct --iterations 1000
    python -m concurrency replay MODULE:FUNCTION TOKEN
    python -m concurrency demo

Exit status: 0 when no failure was found (or the demo ran), 1 when a check or
replay failed, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._config import MODEL_STRATEGIES


class UsageError(Exception):
    """Bad command-line input: reported on stderr with exit status 2."""


def _load(target: str) -> Callable[[], Any]:
    """Import `module:function` (the current directory is importable)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"expected MODULE:FUNCTION, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    fn: Any = module
    for part in attribute.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise UsageError(f"{module_name!r} has no attribute {attribute!r}")
    if not callable(fn):
        raise UsageError(f"{target} is not callable")
    return fn


def _check(args: argparse.Namespace) -> int:
    from .backends.model.api import ScheduleFailure, check

    fn = _load(args.target)
    try:
        report = check(
            fn,
            args.strategy,
            iterations=args.iterations,
            seed=args.seed,
            pct_depth=args.pct_depth,
            max_steps=args.max_steps,
            preemption_bound=args.preemption_bound,
            progress=True if sys.stderr.isatty() else None,
            replay_command=f"python -m concurrency replay {args.target} {{token}}",
        )
    except ScheduleFailure as failure:
        print(failure)
        return 1
    print(report)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from .backends.model.api import ScheduleFailure, replay

    fn = _load(args.target)
    try:
        replay(fn, args.token,
               replay_command=f"python -m concurrency replay {args.target} {{token}}")
    except ScheduleFailure as failure:
        print(failure)
    return 1


def _demo(args: argparse.Namespace) -> int:
    from .backends.model.api import ScheduleFailure, check, replay
    from .examples import bank

    rule = "=" * 78
    print(rule)
    print("1. concurrency.check(bank.overdraft, strategy='pct'): look for a failing schedule")
    print(rule)
    try:
        check(bank.overdraft, "pct", iterations=1000, seed=args.seed,
              replay_command="python -m concurrency replay concurrency.examples.bank:overdraft "
                             "{token}")
    except ScheduleFailure as found:
        print(found)
        failure = found
        token = found.replay
    else:
        print("no failure found (unexpected: the example has a real bug)")
        return 1
    print()
    print(rule)
    print(f"2. concurrency.replay(bank.overdraft, {token!r}): the same trace again")
    print(rule)
    try:
        replay(bank.overdraft, token)
    except ScheduleFailure as again:
        same = again.trace == failure.trace
        print(f"replayed: it fails the same way, and the trace is {'identical' if same else 'DIFFERENT'}")
    print()
    print(rule)
    print("3. concurrency.check(bank.overdraft_fixed, strategy='dfs'): every schedule of the fix")
    print(rule)
    report = check(bank.overdraft_fixed, "dfs")
    print(report)
    return 0 if report.exhausted else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m concurrency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    check_cmd = commands.add_parser("check", help="model-check MODULE:FUNCTION")
    check_cmd.add_argument("target", help="MODULE:FUNCTION taking no arguments")
    check_cmd.add_argument("--strategy", choices=MODEL_STRATEGIES, default="random")
    check_cmd.add_argument("--iterations", type=int, default=None)
    check_cmd.add_argument("--seed", type=int, default=None)
    check_cmd.add_argument("--pct-depth", type=int, default=3)
    check_cmd.add_argument("--max-steps", type=int, default=None)
    check_cmd.add_argument("--preemption-bound", type=int, default=None)
    check_cmd.set_defaults(run=_check)

    replay_cmd = commands.add_parser("replay", help="re-run a recorded failing schedule")
    replay_cmd.add_argument("target", help="MODULE:FUNCTION the token was recorded for")
    replay_cmd.add_argument("token")
    replay_cmd.set_defaults(run=_replay)

    demo_cmd = commands.add_parser("demo", help="find a real bug in a bundled example")
    demo_cmd.add_argument("--seed", type=int, default=None)
    demo_cmd.set_defaults(run=_demo)

    args = parser.parse_args(argv)
    from .backends.model.api import ReplayDivergence, TokenError

    try:
        return int(args.run(args))
    except (UsageError, ValueError, TypeError, ReplayDivergence, TokenError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
