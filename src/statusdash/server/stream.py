"""The live stream's hub: host, alert and service changes pushed to every reader's queue.

Each subscriber has a bounded queue. Publishing never waits: a subscriber whose queue is full is
reset (its queue emptied, ``{"type": "resync"}`` queued) so it knows to fetch the full state
again. Until it reads that resync, further overflows just empty the queue back to it (whatever
it missed predates its refetch); if it has not read it within ``STUCK_AFTER_S`` it is dropped.
So a slow reader costs at most its queue, and ingest never waits for anyone. The route
(``WS /api/stream``) is in ``routes/stream.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

HOST_UPDATED = "host.updated"
ALERT_TRIGGERED = "alert.triggered"
ALERT_RESOLVED = "alert.resolved"
SERVICE_CHANGED = "service.changed"
RESYNC = json.dumps({"type": "resync", "data": {}})
SEND_TIMEOUT_S = 30.0
STUCK_AFTER_S = 60.0
_CLOSE = None  # queue sentinel: close the connection


class Subscriber:
    """One reader's bounded queue of encoded messages."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=max(2, size))
        self.clock = clock
        self.resync_since: float | None = None  # when the unread resync was queued
        self.resyncs = 0
        self.dropped = False

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

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self.queue_size)
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
        """Ask every connection to close (shutdown)."""
        for sub in list(self.subscribers):
            sub.dropped = True
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(_CLOSE)
        self.subscribers.clear()

    def stats(self) -> dict[str, int]:
        return {
            "subscribers": len(self.subscribers),
            "published": self.published,
            "resyncs": self.resyncs,
            "dropped": self.dropped,
        }
