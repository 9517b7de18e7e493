"""`channel()`: `Sender` and `Receiver` in pure Python (nothing more to check).

Every operation runs under the channel's one raw lock, with or without the
GIL. Threads wait on two queues: `receivers` for a message or a disconnect,
`senders` for room in a bounded channel or for a rendezvous hand-over.

- Unbounded (`bound` None) and bounded (`bound` > 0) channels keep messages in
  `items`. A send blocked on a full channel wakes when room appears, when the
  receiver closes, or when its own `Sender` is closed (then it raises
  `Disconnected`: a send that returns normally has delivered).
- A rendezvous (`bound` 0) queues an `_Offer` and waits until a receiver took
  it. A send that gives up (its `Sender` or the receiver closed, or it was
  interrupted) withdraws its offer first, so it raises only if nobody got it.
- `wait_any` callers register wakers. They are called after the lock is
  released, so `_ready()` may read the state under the lock: a change made
  before a waker was added is seen by the caller's readiness check, and one
  made after calls it (see `concurrency.lifecycle.wait_any`).

Async-exception safety is best-effort in pure Python (see `_common`): an
interrupted send or recv either delivered/took one message or none.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ... import sync
from ..._errors import Disconnected, Empty, check_timeout
from ._common import WaitQueue, allocate_lock, deadline_after, next_name, refuse_copy, remaining

__all__ = ["Receiver", "Sender", "channel"]

Wakers = tuple[Callable[[], None], ...]


class _Offer:
    """A message offered through a rendezvous; `taken` once a receiver has it."""

    __slots__ = ("taken", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.taken = False


class _Channel:
    """State shared by the ends of one channel (bound None: unbounded; 0: rendezvous)."""

    __slots__ = (
        "bound",
        "items",
        "lock",
        "name",
        "receiver_closed",
        "receivers",
        "senders",
        "senders_open",
        "wakers",
    )

    def __init__(self, bound: int | None, name: str) -> None:
        self.bound = bound
        self.name = name
        self.lock = allocate_lock()
        self.items: deque[Any] = deque()  # messages (a rendezvous: `_Offer`s)
        self.receivers = WaitQueue()  # threads waiting for a message or a disconnect
        self.senders = WaitQueue()  # threads waiting for room, or for their offer taken
        self.senders_open = 1
        self.receiver_closed = False
        self.wakers: Wakers = ()  # wait_any callers, called outside `lock`

    def full(self) -> bool:
        """Under `lock`: must a bounded send wait for room?"""
        bound = self.bound
        return bound is not None and len(self.items) >= bound

    def disconnect_locked(self) -> Wakers:
        """Under `lock`: wake every parked thread to see the disconnect; the wakers to call."""
        self.receivers.notify_all()
        self.senders.notify_all()
        return self.wakers


def _call(wakers: Wakers) -> None:
    """Tell `wait_any` callers the receiver may be ready (never under the channel's lock)."""
    for waker in wakers:
        waker()


class Sender(sync.Sender[Any]):
    __slots__ = ("_channel", "_closed")
    __reduce__ = refuse_copy

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel
        self._closed = False

    def _check_open_locked(self) -> None:
        """Under the lock: refuse to send through a closed Sender or to a closed receiver."""
        channel = self._channel
        if self._closed:
            raise Disconnected(f"send on a closed Sender of {channel.name}")
        if channel.receiver_closed:
            raise Disconnected(f"send on {channel.name}: its receiver is closed")

    def send(self, value: Any) -> None:
        channel = self._channel
        if channel.bound == 0:
            self._hand_over(channel, value)
            return
        with channel.lock:
            if self._closed or channel.receiver_closed:
                self._check_open_locked()
            if channel.full():
                self._wait_for_room_locked(channel)
            channel.items.append(value)
            if channel.receivers.waiters:
                channel.receivers.notify(1)
            wakers = channel.wakers
        if wakers:
            _call(wakers)

    def _wait_for_room_locked(self, channel: _Channel) -> None:
        """Under the lock: park until the bounded channel has room; raise if closed meanwhile."""
        try:
            while True:
                channel.senders.wait(channel.lock)
                self._check_open_locked()
                if not channel.full():
                    return
        except BaseException:
            if not channel.full():  # the room we may have been woken for goes to another
                channel.senders.notify(1)
            raise

    def _hand_over(self, channel: _Channel, value: Any) -> None:
        """Rendezvous: offer `value`, then wait until a receiver took it."""
        offer = _Offer(value)
        with channel.lock:
            self._check_open_locked()
            channel.items.append(offer)
            channel.receivers.notify(1)
            wakers = channel.wakers
        try:
            _call(wakers)
            with channel.lock:
                while not offer.taken:
                    self._check_open_locked()
                    channel.senders.wait(channel.lock)
        except BaseException:
            with channel.lock:
                if not offer.taken:  # withdrawn: nobody will receive it
                    try:
                        channel.items.remove(offer)
                    except ValueError:  # a closed receiver dropped it already
                        pass
            raise

    def clone(self) -> Sender:
        channel = self._channel
        with channel.lock:
            if self._closed:
                raise Disconnected(f"clone of a closed Sender of {channel.name}")
            channel.senders_open += 1
        return Sender(channel)

    def close(self) -> None:
        channel = self._channel
        wakers: Wakers = ()
        with channel.lock:
            if self._closed:
                return
            self._closed = True
            channel.senders_open -= 1
            if channel.senders_open == 0:
                wakers = channel.disconnect_locked()
            else:
                channel.senders.notify_all()  # a send blocked on this Sender must raise
        _call(wakers)


class Receiver(sync.Receiver[Any]):
    __slots__ = ("_channel",)
    __reduce__ = refuse_copy

    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def recv(self) -> Any:
        channel = self._channel
        with channel.lock:  # the common case first: a message waits
            if channel.items and not channel.receiver_closed:
                return self._pop_locked(channel)
        return self._take(None, True)

    def try_recv(self) -> Any:
        return self._take(None, False)

    def recv_timeout(self, seconds: float) -> Any:
        timeout = check_timeout(seconds, "Receiver.recv_timeout", allow_none=False)
        return self._take(deadline_after(timeout), True)

    def _take(self, deadline: float | None, blocking: bool) -> Any:
        """Receive under the lock, parking until a message, a disconnect or `deadline`."""
        channel = self._channel
        with channel.lock:
            while True:
                if channel.receiver_closed:
                    raise Disconnected(f"recv on a closed Receiver of {channel.name}")
                if channel.items:
                    return self._pop_locked(channel)
                # A sender closes after its last send, so nothing more can arrive.
                if channel.senders_open == 0:
                    raise Disconnected(f"recv on {channel.name}: every sender is closed")
                if not blocking:
                    raise Empty(f"{channel.name} is empty")
                left = remaining(deadline)
                if left == 0.0:
                    raise TimeoutError(f"recv_timeout on {channel.name}: no message in time")
                channel.receivers.wait(channel.lock, left)

    @staticmethod
    def _pop_locked(channel: _Channel) -> Any:
        """Under the lock: take the first message, freeing its place or its rendezvous sender."""
        value = channel.items.popleft()
        bound = channel.bound
        if bound is None:
            return value
        if bound == 0:
            value.taken = True
            channel.senders.notify_all()  # each sender waits for its own offer
            return value.value
        if channel.senders.waiters:
            channel.senders.notify(1)
        return value

    def close(self) -> None:
        channel = self._channel
        with channel.lock:
            if channel.receiver_closed:
                return
            channel.receiver_closed = True
            channel.items.clear()
            wakers = channel.disconnect_locked()
        _call(wakers)

    # The readiness protocol of `concurrency.lifecycle.wait_any`.
    def _ready(self) -> bool:
        """Would `recv` return at once (a message waits, or it is disconnected)?"""
        channel = self._channel
        with channel.lock:
            return bool(channel.items) or channel.senders_open == 0 or channel.receiver_closed

    def _add_waker(self, waker: Callable[[], None]) -> None:
        channel = self._channel
        with channel.lock:
            channel.wakers = (*channel.wakers, waker)

    def _remove_waker(self, waker: Callable[[], None]) -> None:
        channel = self._channel
        with channel.lock:
            channel.wakers = tuple(w for w in channel.wakers if w is not waker)


def channel(bound: int | None, name: str | None) -> tuple[Sender, Receiver]:
    state = _Channel(bound, name or next_name("channel"))
    return Sender(state), Receiver(state)
