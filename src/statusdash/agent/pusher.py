"""Delivery in its own thread, so a push that hangs never delays a collection.

The agent's loop collects on its timer, spools, and pokes this thread; the thread sends what
waits (reports, then service events) with backoff after a failure. Each request is bounded by
the sender's deadline, so a stop waits at most for the request in flight and one flush.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from statusdash.agent.monitor import EventQueue
from statusdash.agent.push import Delivery, Sender
from statusdash.agent.spool import Spool
from statusdash.backoff import Backoff

log = logging.getLogger("statusdash.agent.push")


class Pusher:
    """One delivery thread for one sender, spool and event queue."""

    def __init__(
        self,
        sender: Sender,
        spool: Spool,
        events: EventQueue | None,
        *,
        pass_s: float,
        backoff_max_s: float,
        flush_s: float,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender = sender
        self.spool = spool
        self.events = events
        self._pass_s = pass_s  # a catch-up pass yields to events after this long
        self._flush_s = flush_s
        self._clock = clock
        self.backoff = Backoff(1.0, backoff_max_s, rng=rng)
        # a refused connection (the server restarting) is retried sooner than an answered failure
        self._connect_max_s = min(backoff_max_s, sender.cfg.backoff_connect_max_s)
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Something new waits: send it now, unless a backoff is running."""
        self._wake.set()

    def stop(self, timeout: float) -> bool:
        """Let the request in flight end, flush once (bounded), and join; ``False`` if the
        thread still ran after ``timeout`` seconds (it is a daemon: the exit does not wait)."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def waiting(self) -> bool:
        """Reports or service events wait for the server."""
        return bool(self.spool.pending or self.events)

    def _loop(self) -> None:
        next_try = self._clock()
        while not self._stopping:
            timeout = max(0.0, next_try - self._clock()) if self.waiting() else None
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stopping:
                break
            if not self.waiting() or self._clock() < next_try:
                continue
            try:
                result = self.deliver(self._clock() + self._pass_s, stop=True)
            except Exception:  # a bug here must not end delivery for months
                log.exception("delivery failed")
                result = Delivery(error="delivery failed (a bug: see the log)")
            self.spool.sync()  # what was not acknowledged (yet) waits: make it durable
            if result.ok:
                self.backoff.reset()
                next_try = self._clock()
            else:
                next_try = self._clock() + self.delay_after(result)
        self._flush()

    def delay_after(self, result: Delivery) -> float:
        """The wait after a failed pass: the backoff, capped at ``backoff_connect_max_s`` when
        no server was there; at least a ``Retry-After`` it answered, up to ``backoff_max_s``."""
        delay = self.backoff.next_delay(self._connect_max_s if result.unreachable else None)
        if result.retry_after_s is not None:
            delay = max(delay, min(result.retry_after_s, self.backoff.cap_s))
        return delay

    def deliver(self, deadline: float, stop: bool) -> Delivery:
        """Reports first, then service events, on the same connection; stops at a failure."""
        result = Delivery()
        if self.spool.pending:
            result = self.sender.deliver(
                self.spool, deadline=deadline, stop=(lambda: self._stopping) if stop else None
            )
        if result.ok and self.events:
            events = self.sender.send_events(self.events, deadline=deadline)
            result.error = events.error
        return result

    def _flush(self) -> None:
        """On the way out: one delivery attempt of what waits, no request past ``flush_s``."""
        if not self.waiting():
            return
        end = self._clock() + self._flush_s
        self.sender.cap = end
        try:
            self.deliver(end, stop=False)
        except Exception:
            log.exception("delivery failed")
        self.spool.sync()
