"""Command line: `python -m concurrency check|replay|demo`.

    python -m concurrency check MODULE:FUNCTION --strategy dfs
    python -m concurrency check MODULE:FUNCTION --strategy pct --iterations 5000 --seed 7
    python -m concurrency replay MODULE:FUNCTION TOKEN
    python -m concurrency demo

`check` runs FUNCTION (it takes no arguments) under the model checker, whatever
CONCURRENCY_BACKEND says. When it finds no failure it prints what it searched;
unless the search covered the whole schedule space (only an exhaustive dfs
search without --preemption-bound does), it also says on stderr how much it
searched: "NOT the whole space". `replay` re-runs the schedule a failure printed.

Exit status:
  0    no failure found (check: see stderr for how much was searched)
  1    a failing schedule was found or replayed, or a replay diverged from its
       token or its failure did not recur (the function is not deterministic,
       or it changed: after a fix, run check again)
  2    bad usage: an unknown option, a MODULE:FUNCTION that cannot be imported
       or needs arguments, a damaged token or a token of another function
  3    --strict, and the search did not cover the whole schedule space
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from ._config import MODEL_STRATEGIES
from .backends.model.api import DEFAULT_ITERATIONS, DEFAULT_MAX_STEPS

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input: reported on stderr with exit status 2."""


# --------------------------------------------------------------------------- output


def _out(text: object = "") -> None:
    """Print to stdout; a reader that went away (`... | head -1`) silences the rest."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so later writes and the flush at exit do not fail again.

    The recipe of https://docs.python.org/3/library/signal.html#note-on-sigpipe.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no real file: nothing left to protect
        pass


def _err(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        pass


# --------------------------------------------------------------------------- the target


def _load(target: str) -> Callable[[], Any]:
    """Import `module:function` (the current directory is importable); refuse what needs arguments."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"expected MODULE:FUNCTION, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    except Exception:  # the module itself is broken: show where
        traceback.print_exc()
        raise UsageError(f"cannot import {module_name!r}: it raised (traceback above)") from None
    fn: Any = module
    for part in attribute.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise UsageError(f"{module_name!r} has no attribute {attribute!r}")
    if not callable(fn):
        raise UsageError(f"{target} is not callable")
    needed = _required_parameters(fn)
    if needed:
        plural = "s" if len(needed) > 1 else ""
        raise UsageError(
            f"{target} needs argument{plural} {', '.join(needed)}, but the checker calls it with "
            "none: give it a function that takes no arguments (wrap the call in one)"
        )
    return fn


def _required_parameters(fn: Callable[..., Any]) -> list[str]:
    """The parameters `fn` cannot be called without (none known if it has no signature)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [name for name, parameter in signature.parameters.items()
            if parameter.default is inspect.Parameter.empty and parameter.kind not in variadic]


# --------------------------------------------------------------------------- commands


def _replay_command(target: str) -> str:
    return f"python -m concurrency replay {target} {{token}}"


def _check(args: argparse.Namespace) -> int:
    from .backends.model.api import ScheduleFailure, check

    if args.preemption_bound is not None and args.strategy != "dfs":
        raise UsageError("--preemption-bound bounds a dfs search: use it with --strategy dfs")
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
            replay_command=_replay_command(args.target),
        )
    except ScheduleFailure as failure:
        _out(failure)
        return EXIT_FAILURE
    _out(report)
    if report.complete:
        return EXIT_OK
    plural = "" if report.iterations == 1 else "s"
    searched = f"searched {report.iterations} schedule{plural}, {report.coverage()}"
    if args.strict:
        _err(f"{searched}; --strict fails it: only an exhaustive dfs search without "
             "--preemption-bound passes")
        return EXIT_INCOMPLETE
    _err(searched)
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from .backends.model.api import ScheduleFailure, replay

    fn = _load(args.target)
    try:  # replay never returns: the failure recurs, or the replay diverges
        replay(fn, args.token, max_steps=args.max_steps,
               replay_command=_replay_command(args.target))
    except ScheduleFailure as failure:
        _out(failure)
    return EXIT_FAILURE


def _demo(args: argparse.Namespace) -> int:
    from .backends.model.api import ScheduleFailure, check, replay
    from .examples import bank

    rule = "=" * 78
    _out(rule)
    _out("1. concurrency.check(bank.overdraft, strategy='pct'): look for a failing schedule")
    _out(rule)
    try:
        check(bank.overdraft, "pct", iterations=1000, seed=args.seed,
              replay_command=_replay_command("concurrency.examples.bank:overdraft"))
    except ScheduleFailure as found:
        _out(found)
        failure = found
        token = found.replay
    else:
        _out("no failure found (unexpected: the example has a real bug)")
        return EXIT_FAILURE
    _out()
    _out(rule)
    _out(f"2. concurrency.replay(bank.overdraft, {token!r}): the same trace again")
    _out(rule)
    try:
        replay(bank.overdraft, token)
    except ScheduleFailure as again:
        same = again.trace == failure.trace
        _out(f"replayed: it fails the same way, and the trace is {'identical' if same else 'DIFFERENT'}")
    else:
        _out("replayed: it passed (unexpected: the token records a failing schedule)")
        return EXIT_FAILURE
    _out()
    _out(rule)
    _out("3. concurrency.check(bank.overdraft_fixed, strategy='dfs'): every schedule of the fix")
    _out(rule)
    report = check(bank.overdraft_fixed, "dfs")
    _out(report)
    return EXIT_OK if report.complete else EXIT_FAILURE


# --------------------------------------------------------------------------- arguments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _defaults_by_strategy() -> str:
    return ", ".join(f"{name} {DEFAULT_ITERATIONS[name]}" for name in MODEL_STRATEGIES)


STRATEGY_HELP = (
    "how to explore schedules (default: %(default)s). random: a seeded random thread "
    "at each step, a cheap first sweep. pct: probabilistic concurrency testing, random "
    "thread priorities with --pct-depth - 1 change points, for larger tests. dfs: every "
    "distinct schedule once, depth first, the only strategy that can cover the whole "
    "schedule space"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m concurrency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"concurrency {__version__}",
                        help="print the version of concurrency and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    target_help = ("the function to run, as MODULE:FUNCTION (FUNCTION may be dotted, "
                   "Class.method); it must take no arguments. The current directory is "
                   "importable")
    max_steps_help = ("steps one execution may take before it fails as a livelock "
                      f"(default: {DEFAULT_MAX_STEPS})")

    check_cmd = commands.add_parser(
        "check", help="model-check MODULE:FUNCTION; exit 0 when no failure was found, 1 when one was",
        description="Run FUNCTION under the model checker until it fails or the budget is spent. "
                    "Exit status: 0 no failure found, 1 a failure found, 2 bad usage, 3 --strict "
                    "and the search did not cover the whole schedule space, 130 interrupted.",
    )
    check_cmd.add_argument("target", metavar="MODULE:FUNCTION", help=target_help)
    check_cmd.add_argument("--strategy", choices=MODEL_STRATEGIES, default="random", help=STRATEGY_HELP)
    check_cmd.add_argument(
        "--iterations", type=_positive_int, default=None, metavar="N",
        help=f"most executions to run (default per strategy: {_defaults_by_strategy()}); "
             "dfs stops earlier when it has covered every schedule",
    )
    check_cmd.add_argument(
        "--seed", type=_int, default=None, metavar="N",
        help="seed for random and pct (default: derived from FUNCTION's name, so a run "
             "repeats); pass another to explore differently",
    )
    check_cmd.add_argument(
        "--pct-depth", type=_positive_int, default=3, metavar="D",
        help="the bug depth pct targets: D - 1 priority change points per execution "
             "(default: %(default)s)",
    )
    check_cmd.add_argument("--max-steps", type=_positive_int, default=None, metavar="N",
                           help=max_steps_help)
    check_cmd.add_argument(
        "--preemption-bound", type=_non_negative_int, default=None, metavar="K",
        help="dfs only: explore just the schedules with at most K preemptions (default: "
             "no bound); covering those is NOT the whole space",
    )
    check_cmd.add_argument(
        "--strict", action="store_true",
        help="exit 3 unless the search covered the whole schedule space: only an "
             "exhaustive dfs search without --preemption-bound, finished within "
             "--iterations, passes",
    )
    check_cmd.set_defaults(run=_check)

    replay_cmd = commands.add_parser(
        "replay", help="re-run the failing schedule a replay token recorded",
        description="Re-run exactly the schedule TOKEN recorded. Exit status: 1 it failed "
                    "again, or it diverged from the token or did not fail (FUNCTION is not "
                    "deterministic, or it changed: after a fix, run check again), 2 bad usage "
                    "or a damaged or foreign token, 130 interrupted.",
    )
    replay_cmd.add_argument("target", metavar="MODULE:FUNCTION",
                            help="the function the token was recorded for")
    replay_cmd.add_argument("token", metavar="TOKEN",
                            help="the replay token a failure printed (cc2-...)")
    replay_cmd.add_argument("--max-steps", type=_positive_int, default=None, metavar="N",
                            help=max_steps_help)
    replay_cmd.set_defaults(run=_replay)

    demo_cmd = commands.add_parser(
        "demo", help="find, replay and fix a real bug in a bundled example",
        description="Model-check concurrency.examples.bank: find the overdraft bug with pct, "
                    "replay it, then prove the fix with dfs.",
    )
    demo_cmd.add_argument("--seed", type=_int, default=None, metavar="N",
                          help="seed for the pct search (default: derived from the example's name)")
    demo_cmd.set_defaults(run=_demo)
    return parser


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    from . import ReplayDivergence

    try:
        return int(args.run(args))
    except UsageError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except ReplayDivergence as exc:
        _err(f"replay diverged: {exc}")
        return EXIT_FAILURE
    except ValueError as exc:  # a damaged token, a token of another function, a bad setting
        _err(f"error: {exc}")
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit status (see the module docstring)."""
    try:
        status = _run(argv)
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            _err("")  # end a progress line first
        _err("interrupted")
        return EXIT_INTERRUPTED
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return status


if __name__ == "__main__":
    sys.exit(main())
