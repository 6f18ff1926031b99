"""The live stream's hub: host, alert and service changes pushed to every reader's queue.

Each subscriber has a bounded queue. Publishing never waits: a subscriber whose queue is full is
reset (its queue emptied, ``{"type": "resync"}`` queued) so it knows to fetch the full state
again. Until it reads that resync, further overflows just empty the queue back to it (whatever
it missed predates its refetch); if it has not read it within ``STUCK_AFTER_S`` it is dropped.
So a slow reader costs at most its queue, and ingest never waits for anyone. The route
(``WS /api/stream``) is in ``routes/stream.py``.

Credentials end while a stream is open: each subscriber holds a :class:`Grant` (its token's
expiry, its certificate's serial), and one sweep per hub (not a timer per connection, so
thousands of streams cost one wake-up) closes those whose grant ended with code 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HOST_UPDATED = "host.updated"
ALERT_TRIGGERED = "alert.triggered"
ALERT_RESOLVED = "alert.resolved"
SERVICE_CHANGED = "service.changed"
HOST_REMOVED = "host.removed"  # {"host", "purged", "by"}: drop the host (and its services)
SERVICE_REMOVED = "service.removed"  # {"host", "name"}: the check is gone from the agent
RESYNC = json.dumps({"type": "resync", "data": {}})
SEND_TIMEOUT_S = 30.0
STUCK_AFTER_S = 60.0
POLICY_VIOLATION = 1008  # RFC 6455: the credentials that opened the stream no longer hold


@dataclass(frozen=True, slots=True)
class Closing:
    """Queue item that ends the connection with ``code`` and ``reason``."""

    code: int
    reason: str


_CLOSE = None  # queue sentinel: close the connection, with the subscriber's ``closing``
TOO_SLOW = Closing(1013, "too slow; reconnect and resync")
GOING_AWAY = Closing(1001, "server shutting down; reconnect")  # RFC 6455: going away


@dataclass(frozen=True, slots=True)
class Grant:
    """What a stream's credentials are good for: until ``expires_at`` (wall clock), or ``serial``
    stays unrevoked; None where the credential has no such end."""

    expires_at: float | None = None
    serial: int | None = None

    def ended(self, now: float, is_revoked: Callable[[int], bool]) -> str | None:
        """Why the grant ended at ``now``, or None while it holds."""
        if self.serial is not None and is_revoked(self.serial):
            return "certificate revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "token expired; run `statusdash login`"
        return None


class Subscriber:
    """One reader's bounded queue of encoded messages."""

    def __init__(
        self, size: int, clock: Callable[[], float] = time.monotonic, grant: Grant = Grant()
    ) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=max(2, size))
        self.clock = clock
        self.grant = grant
        self.closing = TOO_SLOW  # why the connection ends when ``next`` returns None
        self.resync_since: float | None = None  # when the unread resync was queued
        self.resyncs = 0
        self.dropped = False

    def end(self, closing: Closing) -> None:
        """Drop whatever is queued and close next, with ``closing``'s code and reason."""
        self.dropped = True
        self.closing = closing
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSE)

    def offer(self, text: str) -> bool:
        """Queue ``text``; on overflow reset (or, stuck, drop) instead. False once dropped."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            pass
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(RESYNC)
        now = self.clock()
        if self.resync_since is None:
            self.resync_since = now
            self.resyncs += 1
        elif now - self.resync_since >= STUCK_AFTER_S:  # it reads nothing: let it go
            self.dropped = True
            self.queue.put_nowait(_CLOSE)
            return False
        return True

    async def next(self) -> str | None:
        text = await self.queue.get()
        if text is RESYNC:
            self.resync_since = None
        return text


class Broadcaster:
    """The set of subscribers; ``publish`` encodes once and offers to each."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.published = 0
        self.resyncs = 0
        self.dropped = 0
        self.ended = 0  # closed because their credentials ended
        self.open_streams = 0  # connections the route still serves (``opened``/``ended``)
        self._none_open = asyncio.Event()
        self._none_open.set()
        self.closing = False  # shutdown: new streams are refused
        self._sweeper: asyncio.Task[None] | None = None

    def subscribe(self, grant: Grant = Grant()) -> Subscriber:
        sub = Subscriber(self.queue_size, grant=grant)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, kind: str, data: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Send ``{"type": kind, "data": data}`` to everyone; ``data`` may be a thunk."""
        if not self.subscribers:
            return
        payload = data() if callable(data) else data
        text = json.dumps({"type": kind, "data": payload}, default=str)
        self.published += 1
        for sub in list(self.subscribers):
            before = sub.resyncs
            if not sub.offer(text):
                self.dropped += 1
                self.subscribers.discard(sub)
            self.resyncs += sub.resyncs - before

    def close_all(self) -> None:
        """Close every connection with 1001 going-away, next, whatever it had queued (shutdown);
        streams opened from now on are closed the same way at once."""
        self.closing = True
        for sub in list(self.subscribers):
            sub.end(GOING_AWAY)
        self.subscribers.clear()

    def opened(self) -> None:
        """The route serves one more connection."""
        self.open_streams += 1
        self._none_open.clear()

    def ended_stream(self) -> None:
        """The route is done with one connection."""
        self.open_streams -= 1
        if self.open_streams <= 0:
            self._none_open.set()

    async def wait_closed(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until the route has closed every stream; False if some
        are still open (a reader too slow to take its close frame: uvicorn cuts it later)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._none_open.wait(), timeout_s)
        return self.open_streams <= 0

    def sweep(self, is_revoked: Callable[[int], bool], now: float | None = None) -> int:
        """Close (1008) every subscriber whose grant has ended; how many were closed."""
        now = time.time() if now is None else now
        closed = 0
        for sub in list(self.subscribers):
            reason = sub.grant.ended(now, is_revoked)
            if reason is not None:
                sub.end(Closing(POLICY_VIOLATION, reason))
                self.subscribers.discard(sub)
                closed += 1
        self.ended += closed
        return closed

    def watch_grants(self, is_revoked: Callable[[int], bool], interval_s: float) -> None:
        """Sweep every ``interval_s`` while anyone is subscribed (idempotent; call on subscribe)."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(
                self._sweep_while_subscribed(is_revoked, interval_s),
                name="statusdash-stream-grants",
            )

    async def _sweep_while_subscribed(
        self, is_revoked: Callable[[int], bool], interval_s: float
    ) -> None:
        while self.subscribers:  # no await between this test and the task's end: no lost start
            await asyncio.sleep(interval_s)
            self.sweep(is_revoked)

    def stats(self) -> dict[str, int]:
        return {
            "subscribers": len(self.subscribers),
            "published": self.published,
            "resyncs": self.resyncs,
            "dropped": self.dropped,
            "ended": self.ended,
        }
