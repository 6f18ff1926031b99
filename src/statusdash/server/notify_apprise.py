"""NOTIFY_URLS: email, chat and push targets through Apprise, one target at a time.

Each URL becomes one ``AppriseTarget`` with its own ``apprise.Apprise`` object, so the
notifier's retry of a failed target never resends to one that already has the message. Apprise
is blocking: each attempt runs in a thread of its own and the notifier waits for it at most
``deadline_s``; a target that hangs past it fails that attempt (retried with backoff) and holds
nothing else up. A target with ``max_hung`` attempts still stuck refuses new ones until they
end, so a dead target cannot pile up threads.

The text goes to Apprise as plain text (``NotifyFormat.TEXT``): Apprise escapes it for a target
that renders HTML or Markdown (email, Telegram, Slack, Discord ...), so text from agents shows
literally there. URLs hold credentials: only Apprise's privacy form of a URL (``masked``) is
logged or recorded, and Apprise's own log lines are scrubbed of every configured URL's secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import apprise

from statusdash.errors import Invalid
from statusdash.safetext import one_line, printable

if TYPE_CHECKING:
    from statusdash.server.notify import Notice

log = logging.getLogger(__name__)
NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
DEFAULT_NAME = "default"  # the route name of a NOTIFY_URLS entry given without one
MAX_ERROR = 500


def _split(spec: str) -> list[str]:
    return [p for p in re.split(r"[,\s]+", spec) if p]


@dataclass(eq=False)
class AppriseTarget:
    """One NOTIFY_URLS entry: its route name, its URL (a secret) and its Apprise object."""

    url: str = field(repr=False)
    name: str
    masked: str
    scheme: str
    hung: int = 0  # attempts whose thread is still running past its deadline
    _apprise: apprise.Apprise = field(default_factory=apprise.Apprise, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def format(self) -> str:
        """What the failure record names as the format: the Apprise scheme."""
        return self.scheme

    def receives(self, route: tuple[str, ...] | None) -> bool:
        """Whether a notice routed to ``route`` (None: every target) comes here."""
        return route is None or self.name in route

    def scrub(self, text: str) -> str:
        return scrub_secrets(self.url, text)

    def send(self, notice: Notice) -> str:
        """Deliver ``notice`` (blocking): ``""`` when Apprise says it went, else why not."""
        result = self._apprise.notify(
            body=printable(notice.text) + (f"\nSee: {one_line(notice.see)}" if notice.see else ""),
            title=plain_title(notice.title),
            notify_type=_TYPES.get((notice.event, notice.severity), apprise.NotifyType.INFO),
            body_format=apprise.NotifyFormat.TEXT,
        )
        if result:
            return ""
        said = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR", "CRITICAL")]
        reason = said[-1] if said else "the target refused the notification"
        return self.scrub(one_line(reason))[:MAX_ERROR]


_TYPES = {
    ("firing", "critical"): apprise.NotifyType.FAILURE,
    ("firing", "warning"): apprise.NotifyType.WARNING,
    ("resolved", "critical"): apprise.NotifyType.SUCCESS,
    ("resolved", "warning"): apprise.NotifyType.SUCCESS,
    ("resolved", "info"): apprise.NotifyType.SUCCESS,
}


def plain_title(title: str) -> str:
    """``title`` on one line without a markup character: Apprise escapes the body for the
    target's format but passes the title as it is, and the title names a host's mount or
    service (text from an agent). The body carries the exact text."""
    return one_line(_MARKUP.sub("", title))


_MARKUP = re.compile(r"[<>&*_\[\]`~#|\\{}]")


def mask_private(url: str) -> str:
    """Apprise's privacy form of a URL cut to its scheme and host: the user, the path and the
    query (where many services keep a token Apprise does not mask) are left out."""
    scheme, _, rest = url.partition("://")
    netloc, slash, _ = rest.partition("/")
    netloc = netloc.partition("?")[0].rpartition("@")[2]
    return one_line(f"{scheme}://{netloc}{'/…' if slash else ''}")


def scrub_secrets(url: str, text: str) -> str:
    """``text`` without ``url`` or any part of it that may be a secret (user, password, path
    segments, query values): Apprise URLs carry tokens in any of them."""
    scheme, _, rest = url.partition("://")
    parts = re.split(r"[/:@?&=#,]+", rest)
    for secret in sorted({p for p in parts if len(p) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "…")
    return text.replace(url, f"{scheme}://…")


class ScrubApprise(logging.Filter):
    """Rewrites every Apprise log line so no configured URL's secret appears in it."""

    def __init__(self, targets: Iterable[AppriseTarget]) -> None:
        super().__init__()
        self.urls = [t.url for t in targets]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = message
        for url in self.urls:
            scrubbed = scrub_secrets(url, scrubbed)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


def parse_notify_urls(spec: str | Iterable[str] | None) -> list[AppriseTarget]:
    """Targets from ``"pager=pagerduty://…, chat=slack://… mailto://…"``; Invalid names the
    entry (by position and scheme, never its secrets) that Apprise cannot use."""
    if not spec:
        return []
    items = _split(spec) if isinstance(spec, str) else [i for s in spec for i in _split(s)]
    targets: list[AppriseTarget] = []
    for i, raw in enumerate(items, 1):
        name, url = DEFAULT_NAME, raw
        head, sep, tail = raw.partition("=")
        if sep and "://" not in head:
            if not NAME.fullmatch(head):
                raise Invalid(
                    f"NOTIFY_URLS #{i}: {head[:40]!r} is not a route name"
                    " (a-z, 0-9, _ and -, starting with a letter, at most 32)"
                )
            name, url = head, tail
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if not scheme:
            raise Invalid(f"NOTIFY_URLS #{i} ({name}) is not a URL: it has no scheme://")
        target = AppriseTarget(url, name, "", scheme)
        scrub = ScrubApprise([target])  # Apprise logs the URL it loads
        logging.getLogger("apprise").addFilter(scrub)
        try:
            added = target._apprise.add(url)
        finally:
            logging.getLogger("apprise").removeFilter(scrub)
        if not added:
            raise Invalid(
                f"NOTIFY_URLS #{i} ({name}, {scheme}://…) is not a URL Apprise can use;"
                " see https://github.com/caronc/apprise/wiki for each service's form"
            )
        shown = str(target._apprise[0].url(privacy=True))  # type: ignore[no-untyped-call]
        target.masked = f"{name}: {mask_private(shown)}"[:255]
        targets.append(target)
    return targets


async def attempt(target: AppriseTarget, notice: Notice, deadline_s: float, max_hung: int) -> str:
    """One delivery to ``target`` in a thread of its own, waited for at most ``deadline_s``:
    ``""`` if delivered, else the error."""
    if target.hung >= max_hung:
        return f"{target.hung} earlier deliveries to this target are still hung"
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()

    def settle(result: str) -> None:
        if not done.done():
            done.set_result(result)

    def work() -> None:
        try:
            result = target.send(notice)
        except Exception as exc:  # a plugin's bug is this delivery's failure
            result = target.scrub(f"{type(exc).__name__}: {exc}")[:MAX_ERROR]
        with target._lock:
            finished.set()
            if timed_out.is_set():
                target.hung -= 1
        with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown): nobody waits
            loop.call_soon_threadsafe(settle, result)

    finished, timed_out = threading.Event(), threading.Event()
    threading.Thread(target=work, name=f"apprise-{target.name}", daemon=True).start()
    try:
        async with asyncio.timeout(deadline_s):
            return await asyncio.shield(done)
    except TimeoutError:
        with target._lock:
            if not finished.is_set():
                timed_out.set()
                target.hung += 1
        return f"no answer within {deadline_s:g} s"
