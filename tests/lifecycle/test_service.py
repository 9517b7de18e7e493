"""`Service`: start/stop/restart, run, wait, on_close, errors from serve()."""

from __future__ import annotations

import sys
import threading
from typing import Any

import pytest
from lifecycle_helpers import real_threads_only

import concurrency
from concurrency import sync, thread
from concurrency.lifecycle import CancellationToken, Service, Shutdown, wait_any
from concurrency.sync.atomic import AtomicInt


class Idle(Service):
    """Serves by waiting for its token; counts how often it served."""

    def __init__(self) -> None:
        super().__init__()
        self.served = AtomicInt(0)
        self.started = CancellationToken()  # an event: serve() has begun at least once

    def serve(self) -> None:
        self.served.fetch_add(1)
        self.started.cancel()
        self.token.wait()


class Once(Service):
    """Returns (or raises) by itself, without waiting to be stopped."""

    def __init__(self, error: BaseException | None = None) -> None:
        super().__init__(name="once")
        self.error = error

    def serve(self) -> None:
        if self.error is not None:
            raise self.error


@concurrency.test
def test_start_then_stop_ends_serving_and_reports_a_clean_close() -> None:
    service = Idle()
    closes: list[Any] = []
    service.on_close(closes.append)
    service.start()
    assert service.is_running()
    first_token = service.token
    service.stop()
    assert not service.is_running()
    assert first_token.is_cancelled()
    assert closes == [None]
    assert service.served.load() == 1
    assert service.wait(timeout=0) is True


@concurrency.test(iterations=1)
def test_stop_is_idempotent_and_start_works_again_with_a_fresh_token() -> None:
    service = Idle()
    service.stop()  # never started: nothing to do
    service.start()
    first = service.token
    service.stop()
    service.stop()
    service.start()
    assert service.token is not first and first.is_cancelled()
    assert not service.token.is_cancelled()
    service.stop()
    assert service.served.load() == 2


@concurrency.test(iterations=1)
def test_starting_a_running_service_is_a_clear_error() -> None:
    service = Idle()
    service.start()
    token = service.token
    with pytest.raises(RuntimeError, match="'Idle' is already running"):
        service.start()
    assert service.token is token, "a refused start must not replace the token"
    service.stop()
    service.start()  # not poisoned by the refused start
    service.stop()


@concurrency.test
def test_stop_from_another_thread_ends_run() -> None:
    service = Idle()
    runner = thread.spawn(service.run)
    service.started.wait()  # serve() is running: stop() now has something to stop
    service.stop()
    runner.join()
    assert not service.is_running()
    assert service.served.load() == 1


@concurrency.test(iterations=1)
def test_run_returns_when_serve_returns_by_itself() -> None:
    service = Once()
    closes: list[Any] = []
    service.on_close(closes.append)
    service.run()
    assert closes == [None]
    assert not service.is_running()
    service.run()  # and it can run again
    assert closes == [None, None]


@concurrency.test(iterations=1)
def test_run_reraises_what_serve_raised_and_on_close_receives_it() -> None:
    error = ValueError("bad config")
    service = Once(error)
    closes: list[Any] = []
    service.on_close(closes.append)
    with pytest.raises(ValueError, match="bad config"):
        service.run()
    assert closes == [error]


@concurrency.test(iterations=1)
def test_stop_from_inside_serve_only_cancels() -> None:
    class StopsItself(Service):
        def serve(self) -> None:
            self.stop()
            assert self.token.wait() is True

    service = StopsItself()
    service.run()
    assert not service.is_running()


def test_an_unobserved_serve_error_reaches_the_unraisable_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    service = Once(KeyError("nobody listens"))
    service.start()
    assert service.wait(timeout=30) is True
    service.stop()  # does not raise serve()'s error
    assert [type(report.exc_value) for report in seen] == [KeyError]
    assert "'once'" in seen[0].err_msg


def test_a_failing_on_close_callback_is_reported_and_the_next_still_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    service = Once()
    closes: list[Any] = []
    service.on_close(lambda error: 1 / 0)
    service.on_close(closes.append)
    service.run()
    assert closes == [None]
    assert [type(report.exc_value) for report in seen] == [ZeroDivisionError]


def test_misuse_is_explained() -> None:
    class Forgot(Service):
        def __init__(self) -> None:  # does not call super().__init__()
            pass

        def serve(self) -> None:
            pass

    with pytest.raises(RuntimeError, match=r"super\(\).__init__"):
        Forgot().start()
    with pytest.raises(TypeError, match="not callable"):
        Once().on_close("nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Service\.wait"):
        Once().wait(timeout=-1)

    class Missing(Service):
        pass

    with pytest.raises(NotImplementedError, match="Missing must implement serve"):
        Missing().run()


@real_threads_only
def test_a_hundred_restarts_leak_no_thread() -> None:
    baseline = threading.active_count()
    service = Idle()
    tokens: list[CancellationToken] = []
    for _ in range(100):
        service.start()
        tokens.append(service.token)
        service.stop()
    assert threading.active_count() == baseline
    assert service.served.load() == 100
    assert len({id(token) for token in tokens}) == 100
    assert all(token.is_cancelled() for token in tokens)


class Echo(Service):
    """The doc's example shape: serve requests from a channel until cancelled."""

    def __init__(self, requests: sync.Receiver[str], replies: sync.Sender[str]) -> None:
        super().__init__(name="echo")
        self.requests = requests
        self.replies = replies

    def serve(self) -> None:
        while True:
            ready = wait_any(self.token, self.requests)
            if self.token in ready:
                return
            try:
                request = self.requests.recv()
            except sync.Disconnected:
                return
            self.replies.send(request.upper())


@concurrency.test
def test_a_channel_service_answers_then_stops() -> None:
    requests_tx, requests_rx = sync.channel()
    replies_tx, replies_rx = sync.channel()
    service = Echo(requests_rx, replies_tx)
    service.start()
    requests_tx.send("ping")
    assert replies_rx.recv() == "PING"
    service.stop()
    assert not service.is_running()


@concurrency.test
def test_cancelling_the_parent_token_stops_the_service() -> None:
    parent = CancellationToken()
    service = Idle()
    service.parent = parent
    runner = thread.spawn(service.run)
    parent.cancel()
    runner.join()
    assert service.token.is_cancelled()
    service.run()  # the parent is cancelled: serving ends at once
    assert service.served.load() == 2


@concurrency.test(iterations=1)
def test_a_service_in_a_subsystem_is_drained_with_it() -> None:
    shutdown = Shutdown()
    frontend = shutdown.subsystem("frontend")
    service = Idle()
    service.parent = frontend.token
    frontend.spawn_fatal_on_exit(service.run, name="idle")
    service.started.wait()
    assert [r.clean for r in shutdown.drain()] == [True]
    assert not shutdown.is_fatal()
    assert not service.is_running()
