"""Notifications off the ingest path: our JSON webhooks and Apprise targets (email, chat, push).

Notices go on a bounded queue that hands out the most severe first and lets hosts take turns, so
one host's flood cannot hold back another's critical alert; a background task delivers each to
every target with retries and exponential backoff. A delivery that fails for any reason (the
network, the target's answer, a bug in rendering) is recorded (``notification_failures``) and
shown by ``GET /api/notifications/failures``; its URL is masked there and in every log line.
Targets come from WEBHOOK_URLS (comma-separated http(s) URLs, each POSTed our JSON payload) and
NOTIFY_URLS (Apprise URLs, ``notify_apprise.py``); each is delivered to on its own, so a retry
never resends to a target that already has the message. A notice's ``route`` (rules file or
NOTIFY_ROUTES) picks the NOTIFY_URLS targets by name; webhooks get every notice. With grouping
on, alert notices wait in their group first and leave as one message per group
(``notify_group.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx

from statusdash import __version__
from statusdash.backoff import ceiling
from statusdash.errors import Invalid
from statusdash.schema import AlertPublic
from statusdash.server.fairqueue import FairQueue
from statusdash.server.notify_apprise import AppriseTarget, ScrubApprise, attempt

if TYPE_CHECKING:
    from statusdash.server.notify_group import Grouper, GroupPolicy

log = logging.getLogger(__name__)

Format = Literal["json"]
Event = Literal["firing", "resolved", "test"]
FailureSink = Callable[["Target | AppriseTarget", "Notice", int, str], Awaitable[None]]
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
MAX_BACKOFF_S = 60.0
MAX_REPLY_BYTES = 64 * 1024  # of a target's answer, read so the connection can be reused
SEVERITIES = ("critical", "warning", "info")  # the order notices leave the queue
MOVED = {  # WEBHOOK_URLS prefixes of the hand-written channels Apprise replaced
    "slack": "put the Slack webhook URL (https://hooks.slack.com/services/…) in NOTIFY_URLS",
    "ntfy": "put ntfys://HOST/TOPIC (ntfy://… for plain http) in NOTIFY_URLS",
}


def severity_rank(severity: str) -> int:
    """0 for critical, 1 for warning, 2 for info (and anything else)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1


def mask_url(url: str) -> str:
    """``url`` without credentials, query or most of its path (webhook URLs are secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    first = parts.path.strip("/").split("/")[0]
    tail = "/…" if parts.path.strip("/").count("/") >= 1 else ""
    shown = f"/{first}{tail}" if first else ""
    return f"{parts.scheme}://{host}{shown}"


@dataclass(frozen=True)
class Target:
    url: str = field(repr=False)
    format: Format = "json"

    @property
    def masked(self) -> str:
        """The format and the URL as ``mask_url`` shows it."""
        return f"{self.format}+{mask_url(self.url)}"

    @property
    def name(self) -> str:
        return "webhook"

    def receives(self, route: tuple[str, ...] | None) -> bool:
        """Webhooks are integrations, not people: every notice, whatever its route."""
        return True

    def scrub(self, text: str) -> str:
        """``text`` with this target's URL scrubbed (``scrub_url``)."""
        return scrub_url(self.url, text)


AnyTarget = Target | AppriseTarget


def scrub_url(url: str, text: str) -> str:
    """``text`` with ``url`` masked and each secret part of it (credentials, the path past its
    first segment, the query) cut out: exception messages may quote any of them."""
    parts = urlsplit(url)
    text = text.replace(url, mask_url(url))
    text = text.replace(str(httpx.URL(url)), mask_url(url))
    secrets = [parts.netloc.rpartition("@")[0], parts.username, parts.password, parts.query]
    secrets += [parts.path, parts.fragment, *parts.path.strip("/").split("/")[1:]]
    secrets += [value for _, value in parse_qsl(parts.query)]
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text


class MaskUrls(logging.Filter):
    """Rewrites httpx's request log lines so a URL shows only what ``mask_url`` keeps."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


def parse_targets(spec: str | Iterable[str] | None) -> list[Target]:
    """Targets from ``"https://…,json+https://…"`` or a list; a ``slack+`` or ``ntfy+`` prefix
    (the channels NOTIFY_URLS replaced) is refused with what to write instead."""
    if not spec:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    targets: list[Target] = []
    for raw in (i.strip() for i in items):
        if not raw:
            continue
        fmt: Format = "json"
        for prefix, instead in MOVED.items():
            if raw.startswith(prefix + "+"):
                raise Invalid(
                    f"WEBHOOK_URLS #{len(targets) + 1}: {prefix}+ targets moved to NOTIFY_URLS"
                    f" (Apprise); {instead}"
                )
        raw = raw.removeprefix("json+")
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = f"{parts.scheme}://…" if parts.scheme else "without a scheme"
            raise Invalid(f"webhook #{len(targets) + 1} ({shown}) is not an http(s) URL")
        targets.append(Target(raw, fmt))
    return targets


@dataclass(frozen=True)
class Notice:
    """One thing to tell every target: one alert's change, a test, or a group of changes.

    A group (``notify_group.py``) has no ``alert``; it brings its own ``heading``, ``level``
    (its most severe member's severity), fair-queue ``key`` and the JSON fields it adds.
    """

    event: Event
    text: str
    alert: AlertPublic | None = None
    heading: str = ""
    level: str = ""
    key: str = ""
    extra: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    route: tuple[str, ...] | None = None  # NOTIFY_URLS names it goes to; None: all of them
    see: str = ""  # where to look: a command or a link (NOTIFY_URLS targets show it)

    @classmethod
    def for_alert(
        cls,
        event: Event,
        alert: AlertPublic,
        route: tuple[str, ...] | None = None,
        see: str = "",
    ) -> Notice:
        """The notice names the alert's host, the authenticated one, whatever its message says;
        ``see`` (a link or a command) ends what NOTIFY_URLS targets get (webhooks: unchanged)."""
        label = "RESOLVED" if event == "resolved" else alert.severity.upper()
        message = alert.message.removeprefix(f"{alert.host}: ")
        return cls(event, f"{label} {alert.host}: {message}", alert, route=route, see=see)

    @property
    def host(self) -> str:
        """The fair queue's key: the alert's host, or the group's own key."""
        return self.alert.host if self.alert else self.key

    @property
    def severity(self) -> str:
        return self.alert.severity if self.alert else (self.level or "info")

    @property
    def rank(self) -> int:
        return severity_rank(self.severity) if self.alert or self.level else 0

    @property
    def title(self) -> str:
        if self.heading:
            return self.heading
        if self.alert is None:
            return "statusdash test notification"
        what = "resolved" if self.event == "resolved" else "alert"
        subject = f" {self.alert.subject}" if self.alert.subject else ""
        return f"statusdash {what}: {self.alert.rule} on {self.alert.host}{subject}"


def render(target: Target, notice: Notice) -> tuple[bytes, dict[str, str]]:
    """The JSON body and headers ``notice`` takes for a webhook (the payload docs/alerts.md
    describes; JSON escapes what it carries)."""
    body: dict[str, Any] = {
        "source": "statusdash",
        "event": notice.event,
        "title": notice.title,
        "text": notice.text,
        "alert": notice.alert.model_dump(mode="json") if notice.alert else None,
        **(notice.extra or {}),
        "sent_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Delivery:
    target: AnyTarget
    ok: bool
    attempts: int
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target.masked,
            "format": self.target.format,
            "name": self.target.name,
            "ok": self.ok,
            "attempts": self.attempts,
            "error": self.error or None,
        }


@dataclass
class _Job:
    notice: Notice
    on_done: Callable[[], None] | None


class Notifier:
    """A bounded, fair queue of notices and the task that delivers them."""

    def __init__(
        self,
        targets: list[AnyTarget],
        *,
        attempts: int,
        backoff_s: float,
        timeout_s: float,
        max_queue: int = 1000,
        concurrency: int = 8,
        on_failure: FailureSink | None = None,
        grouping: GroupPolicy | None = None,
        deadline_s: float = 30.0,
        max_hung: int = 4,
    ) -> None:
        self.targets = targets
        self.deadline_s = deadline_s  # of one Apprise attempt, whatever the target does
        self.max_hung = max_hung
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.on_failure = on_failure
        self.delivered = 0
        self.failed = 0
        self._queue: FairQueue[_Job] = FairQueue(max_queue, len(SEVERITIES))
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._mask = MaskUrls()
        self._scrub = ScrubApprise(t for t in targets if isinstance(t, AppriseTarget))
        self.grouper: Grouper | None = None
        if grouping is not None and grouping.on:
            from statusdash.server.notify_group import Grouper  # it builds on this module

            self.grouper = Grouper(grouping, self._put, lambda: self._queue.qsize() < max_queue)

    def start(self) -> None:
        headers = {"User-Agent": f"statusdash/{__version__}"}
        self._http = httpx.AsyncClient(timeout=self.timeout_s, headers=headers)
        logging.getLogger("httpx").addFilter(self._mask)
        logging.getLogger("apprise").addFilter(self._scrub)
        self._worker = asyncio.create_task(self._run(), name="notifier")

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop taking notices; give deliveries in flight ``grace_s``, then cancel them."""
        if self.grouper is not None:
            self.grouper.close()
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
        logging.getLogger("httpx").removeFilter(self._mask)
        logging.getLogger("apprise").removeFilter(self._scrub)

    def submit(self, notice: Notice, on_done: Callable[[], None] | None = None) -> bool:
        """Queue ``notice`` (never blocks), into its group when grouping is on; ``on_done`` runs
        once every target is done with it (with its group's message). False: not taken now."""
        if not self.targets:
            if on_done is not None:
                on_done()
            return True
        if self.grouper is not None and notice.alert is not None:
            return self.grouper.add(notice, on_done)
        return self._put(notice, on_done)

    def _put(self, notice: Notice, on_done: Callable[[], None] | None) -> bool:
        if not self._queue.put_nowait(_Job(notice, on_done), notice.rank, notice.host):
            log.debug("notification queue full; a notice of %s waits", notice.host or "a test")
            return False
        return True

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()  # a free slot first: the job is chosen when it can go
            job = await self._queue.get()
            task = asyncio.create_task(self._deliver_all(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver_all(self, job: _Job) -> None:
        try:
            route = job.notice.route
            mine = [t for t in self.targets if t.receives(route)]
            await asyncio.gather(*(self.deliver(t, job.notice) for t in mine))
        finally:
            self._slots.release()
        if job.on_done is not None:
            try:
                job.on_done()
            except Exception:
                log.exception("notification callback failed")

    async def deliver(
        self, target: AnyTarget, notice: Notice, attempts: int | None = None
    ) -> Delivery:
        """Deliver ``notice`` to ``target``, retrying with backoff; any failure is recorded."""
        tries = attempts or self.attempts
        if isinstance(target, AppriseTarget):
            return await self._deliver_apprise(target, notice, tries)
        attempt = 1
        try:
            content, headers = render(target, notice)
        except Exception as exc:  # a bug in rendering fails this notice, not the notifier
            log.exception("webhook %s: cannot render a %s notice", target.masked, notice.event)
            error = target.scrub(f"render: {_describe(exc)}")
            return await self._failed(target, notice, attempt, error)
        for attempt in range(1, tries + 1):
            error, wait = await self._attempt(target, content, headers, attempt)
            if not error:
                self.delivered += 1
                return Delivery(target, True, attempt)
            if wait is None or attempt == tries:
                break
            log.info("webhook %s: %s; retry %d in %.1f s", target.masked, error, attempt, wait)
            await asyncio.sleep(wait)
        return await self._failed(target, notice, attempt, error)

    async def _deliver_apprise(self, target: AppriseTarget, notice: Notice, tries: int) -> Delivery:
        """Apprise says only whether it went: every failure is worth a retry, with backoff."""
        error = ""
        for n in range(1, tries + 1):
            error = await attempt(target, notice, self.deadline_s, self.max_hung)
            if not error:
                self.delivered += 1
                return Delivery(target, True, n)
            if n == tries:
                break
            wait = ceiling(n, self.backoff_s, MAX_BACKOFF_S)
            log.info("notify %s: %s; retry %d in %.1f s", target.masked, error, n, wait)
            await asyncio.sleep(wait)
        return await self._failed(target, notice, tries, error)

    async def _attempt(
        self, target: Target, content: bytes, headers: dict[str, str], attempt: int
    ) -> tuple[str, float | None]:
        """One POST: ``""`` if delivered, else the error and the wait before a retry (None:
        not worth one). The whole attempt, answer included, has ``timeout_s``."""
        assert self._http is not None, "notifier not started"
        wait = ceiling(attempt, self.backoff_s, MAX_BACKOFF_S)
        try:
            async with asyncio.timeout(self.timeout_s):
                req = self._http.stream("POST", target.url, content=content, headers=headers)
                async with req as resp:
                    read = 0
                    async for chunk in resp.aiter_raw():
                        read += len(chunk)
                        if read > MAX_REPLY_BYTES:
                            break
        except TimeoutError:
            return f"no answer within {self.timeout_s:g} s", wait
        except httpx.TransportError as exc:
            return target.scrub(_describe(exc)), wait
        except Exception as exc:  # a bad header value, an odd answer: this delivery's failure
            return target.scrub(_describe(exc)), None
        if resp.is_success:
            return "", None
        error = f"HTTP {resp.status_code}"
        if resp.status_code not in RETRYABLE:
            return error, None
        after = resp.headers.get("Retry-After", "")
        if after.isdigit():
            wait = min(MAX_BACKOFF_S, max(wait, float(after)))
        return error, wait

    async def _failed(
        self, target: AnyTarget, notice: Notice, attempts: int, error: str
    ) -> Delivery:
        self.failed += 1
        log.warning("notify %s failed after %d attempts: %s", target.masked, attempts, error)
        if self.on_failure is not None:
            try:
                await self.on_failure(target, notice, attempts, error)
            except Exception:
                log.exception("recording a failed notification failed")
        return Delivery(target, False, attempts, error)

    async def test(self) -> list[Delivery]:
        """Send a test notice to every target once, now, and say how each went."""
        notice = Notice("test", "statusdash test notification: notifications are wired up")
        return list(await asyncio.gather(*(self.deliver(t, notice, 1) for t in self.targets)))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
