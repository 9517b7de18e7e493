"""Process-level behaviour: signal handling, the watchdog, and the example pipeline end to end.

Each test runs a real Python process. Timeouts are generous; only outcomes
(exit status, printed lines, what is on stderr) are asserted.
"""

from __future__ import annotations

import signal
from pathlib import Path

from lifecycle_helpers import EXAMPLES, Child, process_level, run_script

from concurrency.lifecycle import EXIT_CLEAN, EXIT_FATAL, EXIT_WATCHDOG

pytestmark = process_level

PIPELINE = str(EXAMPLES / "pipeline_service.py")

SIGNAL_SCRIPT = """
    import os, sys
    from concurrency.lifecycle import Shutdown, CancellationToken

    shutdown = Shutdown()
    worker = shutdown.subsystem("worker", deadline=30)
    never = CancellationToken()
    if os.environ.get("IGNORE") == "1":
        worker.spawn(never.wait, name="deaf")  # keeps the drain busy: a second signal is needed
    else:
        worker.spawn(worker.token.wait, name="polite")
    shutdown.install_signal_handlers()
    print("ready", flush=True)
    shutdown.wait()
    print("cancelled", flush=True)
    print([r.clean for r in shutdown.drain()], flush=True)
    sys.exit(shutdown.exit_code())
"""


def _signal_script(tmp_path: Path) -> str:
    import textwrap

    path = tmp_path / "signals.py"
    path.write_text(textwrap.dedent(SIGNAL_SCRIPT))
    return str(path)


def test_sigterm_cancels_the_root_and_the_program_drains(tmp_path: Path) -> None:
    child = Child([_signal_script(tmp_path)], tmp_path / "stderr.txt")
    try:
        child.wait_for_line("ready")
        child.process.send_signal(signal.SIGTERM)
        assert child.finish() == EXIT_CLEAN, child.stderr()
    finally:
        child.kill()
    assert child.lines == ["ready", "cancelled", "[True]"]


def test_sigint_works_the_same_way(tmp_path: Path) -> None:
    child = Child([_signal_script(tmp_path)], tmp_path / "stderr.txt")
    try:
        child.wait_for_line("ready")
        child.process.send_signal(signal.SIGINT)
        assert child.finish() == EXIT_CLEAN, child.stderr()
    finally:
        child.kill()
    assert child.lines[-1] == "[True]"


def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    child = Child([_signal_script(tmp_path)], tmp_path / "stderr.txt", IGNORE="1")
    try:
        child.wait_for_line("ready")
        child.process.send_signal(signal.SIGTERM)
        child.wait_for_line("cancelled")  # now draining, stuck on the deaf task for 30s
        child.process.send_signal(signal.SIGTERM)
        assert child.finish(timeout=20) == 128 + signal.SIGTERM
    finally:
        child.kill()
    assert "second SIGTERM" in child.stderr()
    assert "[False]" not in child.lines, "the drain should not have finished"


def test_the_watchdog_dumps_every_stack_and_exits_with_its_code() -> None:
    result = run_script("""
        from concurrency.lifecycle import CancellationToken, Shutdown

        def ignore_cancellation(never):
            never.wait()

        shutdown = Shutdown()
        worker = shutdown.subsystem("worker", deadline=0.2)
        worker.spawn(ignore_cancellation, CancellationToken(), name="deaf")
        shutdown.start_watchdog(1.0)
        shutdown.root.cancel()
        print([r.stragglers for r in shutdown.drain()], flush=True)
        # leaving main: the interpreter waits for "deaf" forever, until the watchdog fires
    """)
    assert result.returncode == EXIT_WATCHDOG, result.stderr
    assert result.stdout.strip() == "[['deaf']]"
    assert "watchdog: shutdown still not finished 1s after shutdown.root" in result.stderr
    assert "still running: worker: deaf" in result.stderr
    assert "in ignore_cancellation" in result.stderr  # faulthandler's dump of that thread


def test_the_watchdog_stays_quiet_after_a_clean_shutdown() -> None:
    result = run_script("""
        import sys, time
        from concurrency.lifecycle import Shutdown

        shutdown = Shutdown()
        worker = shutdown.subsystem("worker", deadline=10)
        worker.spawn(worker.token.wait)
        shutdown.start_watchdog(0.3)
        try:
            shutdown.start_watchdog(0.3)
        except RuntimeError as error:
            print("refused:", error, flush=True)
        shutdown.root.cancel()
        shutdown.drain()
        time.sleep(1.0)  # well past the watchdog's limit: it must have stood down
        print("still alive", flush=True)
        sys.exit(shutdown.exit_code())
    """)
    assert result.returncode == EXIT_CLEAN, result.stderr
    assert "refused: shutdown: start_watchdog() was already called" in result.stdout
    assert result.stdout.rstrip().endswith("still alive")
    assert "watchdog" not in result.stderr


# --------------------------------------------------------------------------- the example


def test_pipeline_drains_in_order_on_sigterm_and_loses_nothing(tmp_path: Path) -> None:
    child = Child([PIPELINE], tmp_path / "stderr.txt")
    try:
        child.wait_for_line("ready")
        child.process.send_signal(signal.SIGTERM)
        code = child.finish()
    finally:
        child.kill()
    assert code == EXIT_CLEAN, (child.lines, child.stderr())
    assert child.lines[:5] == [
        "ready",
        "shutting down",
        "drained source: clean",
        "drained square: clean",
        "drained sink: clean",
    ]
    produced_line = child.lines[5]
    produced, consumed = (int(part.split()[-1]) for part in produced_line.split(",")[:2])
    assert produced == consumed, produced_line
    assert produced_line.endswith("total ok: True")
    assert child.lines[-1] == "exit code 0"


def test_pipeline_with_a_planted_hang_is_ended_by_the_watchdog(tmp_path: Path) -> None:
    child = Child(
        [PIPELINE], tmp_path / "stderr.txt",
        PIPELINE_HANG="1", PIPELINE_DEADLINE="0.5", PIPELINE_WATCHDOG="3",
    )
    try:
        child.wait_for_line("ready")
        child.process.send_signal(signal.SIGTERM)
        code = child.finish()
    finally:
        child.kill()
    stderr = child.stderr()
    assert code == EXIT_WATCHDOG, (child.lines, stderr)
    assert "drained square: stragglers: stubborn" in child.lines
    assert "drained sink: clean" in child.lines
    assert "still running: square: stubborn" in stderr
    assert "in ignore_cancellation" in stderr


def test_pipeline_stage_crash_is_fatal(tmp_path: Path) -> None:
    child = Child([PIPELINE], tmp_path / "stderr.txt", PIPELINE_CRASH="20")
    try:
        code = child.finish()  # no signal: the crash shuts the pipeline down by itself
    finally:
        child.kill()
    assert code == EXIT_FATAL, (child.lines, child.stderr())
    assert any(
        line.startswith("fatal: square: task 'square' raised RuntimeError") for line in child.lines
    ), child.lines
