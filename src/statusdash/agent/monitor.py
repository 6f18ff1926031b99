"""Service checks inside the agent daemon: worker threads, the latest results, pending events.

Checks run in a few worker threads, so a slow one (an HTTP timeout, a hung ``systemctl``) never
delays a collection or a push: the agent's loop only starts the checks that are due, takes the
results that finished, copies the latest into each report and posts the events they raise, over
the connection that carries the reports. Events wait in memory (bounded) until the server
acknowledged them, so a change seen while the server is away is sent once it is back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

from statusdash.agent.checks.config import CheckSpec, ServicesConfig
from statusdash.agent.checks.run import HEALTHY, Checker, CheckResult

log = logging.getLogger("statusdash.agent.services")

MAX_WORKERS = 4
MAX_PENDING_EVENTS = 1000  # ~300 KB; only changes count, an unchanged status replaces its own


class CheckSchedule:
    """Which checks are due, each on its own interval (monotonic seconds)."""

    def __init__(self, config: ServicesConfig) -> None:
        self.config = config
        self._next: dict[str, float] = {}

    def due(self, now: float) -> list[str]:
        names = []
        for s in self.config.services:
            if self._next.get(s.name, 0.0) <= now:
                names.append(s.name)
                self._next[s.name] = now + self.config.interval_of(s)
        return names

    def next_due(self) -> float:
        """When the next check is due (0 before the first ``due``; inf without checks)."""
        if not self.config.services:
            return float("inf")
        return min(self._next.get(s.name, 0.0) for s in self.config.services)


def error_of(r: CheckResult) -> str:
    """What is wrong ("" when healthy): part of a status, so a new error is a change."""
    return "" if r["status"] == HEALTHY else (r["detail"] or r["status"])


class ChangeTracker:
    """Decides which results become events: a changed status (or error), or a heartbeat due."""

    def __init__(self, config: ServicesConfig) -> None:
        self.config = config
        self._specs = {s.name: s for s in config.services}
        self._last: dict[str, tuple[str, str, float]] = {}  # status, error, queued at

    def observe(self, r: CheckResult, now: float) -> dict[str, Any] | None:
        """The event ``r`` raises, if any; the caller keeps it until the server took it."""
        last = self._last.get(r["name"])
        state = (r["status"], error_of(r))
        if last is not None and last[:2] == state and now - last[2] < self.config.heartbeat:
            return None
        self._last[r["name"]] = (*state, now)
        spec = self._specs.get(r["name"])
        return to_event(r, self.config.expected_s(spec) if spec else None)


def to_event(r: CheckResult, expected_s: float | None = None) -> dict[str, Any]:
    """The ``POST /api/events`` event for one result (unknown counts as unhealthy)."""
    healthy = r["status"] == HEALTHY
    metrics: dict[str, Any] = {"kind": r["kind"], "status": r["status"]}
    metrics["latencyMs"] = r["latency_ms"]
    payload: dict[str, Any] = {
        "serviceName": r["name"],
        "checkedAt": r["checked_at"],
        "metrics": metrics,
    }
    if healthy:
        metrics["detail"] = r["detail"]
    else:
        payload["errorMessage"] = error_of(r)
    if expected_s is not None:
        payload["expectedWithinS"] = expected_s
    kind = "SYSTEM_SERVICE_HEALTHY" if healthy else "SYSTEM_SERVICE_UNHEALTHY"
    return {"type": kind, "payload": payload}


class EventQueue:
    """Events waiting for the server's acknowledgement, oldest first, encoded, bounded.

    An event that says the same as the last one waiting for its service (a heartbeat while the
    server is away) replaces it rather than queueing behind it, so the queue holds changes:
    a service that went down and came back during an outage is reported as both, in order.
    """

    def __init__(self, limit: int = MAX_PENDING_EVENTS) -> None:
        self.limit = limit
        self.dropped = 0
        self._items: deque[tuple[str, tuple[str, str], bytes]] = deque()
        self._lock = threading.Lock()  # the agent's loop adds, its push thread sends and acks

    def __len__(self) -> int:
        return len(self._items)

    def add(self, event: dict[str, Any]) -> None:
        p = event["payload"]
        name, state = p["serviceName"], (event["type"], p.get("errorMessage") or "")
        data = json.dumps(event, separators=(",", ":"), allow_nan=False).encode()
        with self._lock:
            self._add(name, state, data)

    def _add(self, name: str, state: tuple[str, str], data: bytes) -> None:
        for i in range(len(self._items) - 1, -1, -1):
            if self._items[i][0] == name:
                if self._items[i][1] == state:
                    self._items[i] = (name, state, data)
                    return
                break
        self._items.append((name, state, data))
        if len(self._items) > self.limit:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning(
                    "more than %d service events wait for the server: dropped the oldest"
                    " (%d dropped since start)",
                    self.limit,
                    self.dropped,
                )

    def batch(self, max_events: int, max_bytes: int) -> list[bytes]:
        """The oldest events, at most ``max_events`` and about ``max_bytes`` (at least one)."""
        out: list[bytes] = []
        size = 0
        with self._lock:
            for _, _, data in self._items:
                if out and (len(out) >= max_events or size + len(data) > max_bytes):
                    break
                out.append(data)
                size += len(data) + 1
        return out

    def ack(self, n: int) -> None:
        with self._lock:
            for _ in range(min(n, len(self._items))):
                self._items.popleft()


class _Workers:
    """A few daemon threads running checks, started as needed (as ThreadPoolExecutor does), but
    daemons: a check still hanging when the agent stops does not hold up its exit."""

    def __init__(self, run: Callable[[CheckSpec], None], size: int) -> None:
        self._run = run
        self._size = max(1, size)
        self._jobs: SimpleQueue[CheckSpec | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)

    def submit(self, spec: CheckSpec) -> None:
        self._jobs.put(spec)
        if self._idle.acquire(timeout=0) or len(self._threads) >= self._size:
            return  # an idle worker takes it, or the job waits for a busy one
        t = threading.Thread(target=self._loop, name=f"check-{len(self._threads)}", daemon=True)
        self._threads.append(t)
        t.start()

    def _loop(self) -> None:
        while (spec := self._jobs.get()) is not None:
            try:
                self._run(spec)
            except Exception:  # a bug must not cost the worker (and its check) for months
                log.exception("service check %s failed", spec.name)
            self._idle.release()

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


class ServiceMonitor:
    """The agent's side of services.yaml: starts due checks, keeps the latest result of each,
    and queues the events they raise. All methods but the workers' run on the agent's loop."""

    def __init__(
        self,
        config: ServicesConfig,
        *,
        wake: Callable[[], None] | None = None,
        workers: int = MAX_WORKERS,
    ) -> None:
        self.config = config
        self.schedule = CheckSchedule(config)
        self.tracker = ChangeTracker(config)
        self.events = EventQueue()
        self._specs = {s.name: s for s in config.services}
        self._wake = wake
        self._checker = Checker()
        self._workers = _Workers(self._run, min(workers, len(config.services)))
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._finished: list[CheckResult] = []
        self._seen: dict[str, tuple[str, str]] = {}  # by the workers: wake the loop on a change
        self._latest: dict[str, CheckResult] = {}
        self.skipped = 0  # due while the previous run of the same check still ran

    def start_due(self, now: float) -> int:
        """Hand the checks that are due to the workers; returns how many were started."""
        started = 0
        for name in self.schedule.due(now):
            with self._lock:
                if name in self._running:
                    self.skipped += 1
                    continue
                self._running.add(name)
            self._workers.submit(self._specs[name])
            started += 1
        return started

    def _run(self, spec: CheckSpec) -> None:
        try:
            result = self._checker.run(spec)
        finally:
            with self._lock:
                self._running.discard(spec.name)
        state = (result["status"], error_of(result))
        with self._lock:
            self._finished.append(result)
            changed = self._seen.get(spec.name) != state
            self._seen[spec.name] = state
        if changed and self._wake is not None:
            self._wake()  # so that the event goes now, not at the next collection

    def update(self, now: float) -> int:
        """Take the results that finished: the latest of each, and their events (returns how
        many events were queued)."""
        with self._lock:
            finished, self._finished = self._finished, []
        queued = 0
        for r in finished:
            old = self._latest.get(r["name"])
            if old is None or (old["status"], error_of(old)) != (r["status"], error_of(r)):
                log.info("service %s is %s: %s", r["name"], r["status"], r["detail"])
            self._latest[r["name"]] = r
            event = self.tracker.observe(r, now)
            if event is not None:
                self.events.add(event)
                queued += 1
        return queued

    def next_due(self) -> float:
        return self.schedule.next_due()

    def results(self) -> list[dict[str, Any]]:
        """The latest result of every check that has one, in services.yaml's order."""
        return [dict(self._latest[s.name]) for s in self.config.services if s.name in self._latest]

    def idle(self, timeout: float) -> bool:
        """Wait until no check runs (``--once``, tests); ``True`` if none does."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._running:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def close(self) -> None:
        self._workers.stop()
        self._checker.close()
