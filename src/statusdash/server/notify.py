"""Webhook notifications (generic JSON, Slack-compatible, ntfy) off the ingest path.

Notices go on a bounded queue; a background task delivers each to every target with retries and
exponential backoff. A delivery that fails every attempt is recorded (``notification_failures``)
and shown by ``GET /api/notifications/failures``. Targets come from WEBHOOK_URLS, a comma-separated
list where ``slack+`` or ``ntfy+`` before the URL picks the format (``json+`` or none: JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from statusdash import __version__
from statusdash.backoff import ceiling
from statusdash.errors import Invalid
from statusdash.schema import AlertPublic

log = logging.getLogger(__name__)

Format = Literal["json", "slack", "ntfy"]
Event = Literal["firing", "resolved", "test"]
FailureSink = Callable[["Target", "Notice", int, str], Awaitable[None]]
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class Target:
    url: str
    format: Format = "json"

    @property
    def masked(self) -> str:
        """The URL without credentials, query or most of its path (webhook URLs are secrets)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        first = parts.path.strip("/").split("/")[0]
        tail = "/…" if parts.path.strip("/").count("/") >= 1 else ""
        shown = f"/{first}{tail}" if first else ""
        return f"{self.format}+{parts.scheme}://{host}{shown}"


def parse_targets(spec: str | Iterable[str] | None) -> list[Target]:
    """Targets from ``"slack+https://…,ntfy+https://ntfy.sh/topic,https://…"`` or a list."""
    if not spec:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    targets: list[Target] = []
    for raw in (i.strip() for i in items):
        if not raw:
            continue
        fmt: Format = "json"
        for prefix in ("json", "slack", "ntfy"):
            if raw.startswith(prefix + "+"):
                fmt = prefix
                raw = raw[len(prefix) + 1 :]
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid(f"webhook {raw[:40]!r} is not an http(s) URL")
        targets.append(Target(raw, fmt))
    return targets


@dataclass(frozen=True)
class Notice:
    """One thing to tell every target."""

    event: Event
    text: str
    alert: AlertPublic | None = None

    @classmethod
    def for_alert(cls, event: Event, alert: AlertPublic) -> Notice:
        if event == "resolved":
            text = f"RESOLVED {alert.message}"
        else:
            text = f"{alert.severity.upper()} {alert.message}"
        return cls(event, text, alert)

    @property
    def title(self) -> str:
        if self.alert is None:
            return "statusdash test notification"
        what = "resolved" if self.event == "resolved" else "alert"
        subject = f" {self.alert.subject}" if self.alert.subject else ""
        return f"statusdash {what}: {self.alert.rule} on {self.alert.host}{subject}"


def render(target: Target, notice: Notice) -> tuple[bytes, dict[str, str]]:
    """The body and headers ``notice`` takes for ``target``'s format."""
    if target.format == "ntfy":
        sev = notice.alert.severity if notice.alert else "info"
        priority = "3"
        if notice.event == "firing":
            priority = {"critical": "5", "warning": "4"}.get(sev, "3")
        tags = {"firing": "rotating_light", "resolved": "white_check_mark", "test": "test_tube"}
        headers = {
            "Title": notice.title,
            "Priority": priority,
            "Tags": tags[notice.event],
            "Content-Type": "text/plain; charset=utf-8",
        }
        return notice.text.encode(), headers
    if target.format == "slack":
        icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:", "test": ":wave:"}
        body: dict[str, Any] = {"text": f"{icon[notice.event]} {notice.text}"}
    else:
        body = {
            "source": "statusdash",
            "event": notice.event,
            "title": notice.title,
            "text": notice.text,
            "alert": notice.alert.model_dump(mode="json") if notice.alert else None,
            "sent_at": datetime.now(UTC).isoformat(),
        }
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Delivery:
    target: Target
    ok: bool
    attempts: int
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target.masked,
            "format": self.target.format,
            "ok": self.ok,
            "attempts": self.attempts,
            "error": self.error or None,
        }


@dataclass
class _Job:
    notice: Notice
    on_done: Callable[[], None] | None


class Notifier:
    """A bounded queue of notices and the task that delivers them."""

    def __init__(
        self,
        targets: list[Target],
        *,
        attempts: int,
        backoff_s: float,
        timeout_s: float,
        max_queue: int = 1000,
        concurrency: int = 8,
        on_failure: FailureSink | None = None,
    ) -> None:
        self.targets = targets
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.on_failure = on_failure
        self.delivered = 0
        self.failed = 0
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=max_queue)
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    def start(self) -> None:
        headers = {"User-Agent": f"statusdash/{__version__}"}
        self._http = httpx.AsyncClient(timeout=self.timeout_s, headers=headers)
        self._worker = asyncio.create_task(self._run(), name="notifier")

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop taking notices; give deliveries in flight ``grace_s``, then cancel them."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def submit(self, notice: Notice, on_done: Callable[[], None] | None = None) -> bool:
        """Queue ``notice`` (never blocks); ``on_done`` runs once every target is done with it."""
        if not self.targets:
            if on_done is not None:
                on_done()
            return True
        try:
            self._queue.put_nowait(_Job(notice, on_done))
        except asyncio.QueueFull:
            log.warning("notification queue full; dropped: %s", notice.text)
            return False
        return True

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver_all(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver_all(self, job: _Job) -> None:
        try:
            await asyncio.gather(*(self.deliver(t, job.notice) for t in self.targets))
        finally:
            self._slots.release()
        if job.on_done is not None:
            try:
                job.on_done()
            except Exception:
                log.exception("notification callback failed")

    async def deliver(
        self, target: Target, notice: Notice, attempts: int | None = None
    ) -> Delivery:
        """POST ``notice`` to ``target``, retrying with backoff; record a final failure."""
        assert self._http is not None, "notifier not started"
        tries = attempts or self.attempts
        content, headers = render(target, notice)
        error = ""
        for attempt in range(1, tries + 1):
            wait = ceiling(attempt, self.backoff_s, MAX_BACKOFF_S)
            try:
                resp = await self._http.post(target.url, content=content, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if resp.is_success:
                    self.delivered += 1
                    return Delivery(target, True, attempt)
                error = f"HTTP {resp.status_code}"
                if resp.status_code not in RETRYABLE:
                    break
                after = resp.headers.get("Retry-After", "")
                if after.isdigit():
                    wait = min(MAX_BACKOFF_S, max(wait, float(after)))
            if attempt < tries:
                log.info("webhook %s: %s; retry %d in %.1f s", target.masked, error, attempt, wait)
                await asyncio.sleep(wait)
        self.failed += 1
        log.warning("webhook %s failed after %d attempts: %s", target.masked, attempt, error)
        if self.on_failure is not None:
            try:
                await self.on_failure(target, notice, attempt, error)
            except Exception:
                log.exception("recording a failed notification failed")
        return Delivery(target, False, attempt, error)

    async def test(self) -> list[Delivery]:
        """Send a test notice to every target once, now, and say how each went."""
        notice = Notice("test", "statusdash test notification: webhooks are wired up")
        return list(await asyncio.gather(*(self.deliver(t, notice, 1) for t in self.targets)))
