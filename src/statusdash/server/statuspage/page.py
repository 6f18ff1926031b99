"""``StatusPage``: the page's service. Bars in the jobs' thread, the page bytes cached in memory.

A request is answered from bytes rendered at most STATUS_PAGE_STATE_MAX_AGE_S ago; the 90-day
bars are recomputed every STATUS_PAGE_BARS_INTERVAL_S by the server's job scheduler.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from statusdash.server.context import ServerContext
from statusdash.server.statuspage import bars as bars_mod
from statusdash.server.statuspage import snapshot
from statusdash.server.statuspage.config import PageConfig
from statusdash.settings import Settings

log = logging.getLogger(__name__)
JOB = "status_page"


LABELS = {"up": "Operational", "degraded": "Degraded", "down": "Down", "unknown": "No data"}


def when(iso: str | None) -> str:
    """``2026-12-02T06:56:43Z`` as ``2026-12-02 06:56 UTC`` (None: ``not yet``)."""
    return "not yet" if iso is None else f"{iso[:10]} {iso[11:16]} UTC"


def environment() -> Environment:
    """Templates from the package; autoescape on for everything, undefined names an error."""
    env = Environment(
        loader=PackageLoader("statusdash.server.statuspage", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["LABELS"] = LABELS
    env.filters["when"] = when
    return env


@dataclass(frozen=True, slots=True)
class Rendered:
    """The page as served: each body plain and gzipped once (the bars repeat: ~15x smaller)."""

    html: bytes
    json: bytes
    html_gz: bytes
    json_gz: bytes
    built_at: float  # monotonic


class StatusPage:
    """Holds the config, the last bars and the last rendered page of one app."""

    def __init__(self, settings: Settings, config: PageConfig) -> None:
        self.settings = settings
        self.config = config
        self.bars: bars_mod.Bars | None = None
        self._ctx: ServerContext | None = None
        self._rendered: Rendered | None = None
        self._template = environment().get_template("status.html")

    def bind(self, ctx: ServerContext) -> None:
        """Use ``ctx`` (the one the app starts with) and register the bars job."""
        self._ctx = ctx
        ctx.jobs.scheduler.register(JOB, self.settings.status_page_bars_interval_s, self.refresh)

    @property
    def ctx(self) -> ServerContext:
        if self._ctx is None:
            raise RuntimeError("the status page is not bound to a running app")
        return self._ctx

    def refresh(self) -> bars_mod.Bars:
        """Recompute the bars (the jobs' thread, or start-up in a worker thread)."""
        kept_s = self.settings.retention_days * 86_400.0  # alerts are pruned with the 1-min tier
        result = bars_mod.compute(self.ctx.readers.get(), self.config, time.time(), kept_s)
        self.bars = result
        self._rendered = None  # the next request renders the new bars
        return result

    def content(self) -> dict[str, Any]:
        ctx = self.ctx
        service = ctx.alerting.service
        return snapshot.build(
            config=self.config,
            show_hosts=self.settings.status_page_show_hosts,
            now=service.clock(),
            cache=ctx.storage.cache,
            services=ctx.alerting.services.all(),
            alerts=list(service.engine.open.values()),
            rules=service.engine.rules,
            bars=self.bars,
            refresh_s=self.settings.status_page_refresh_s,
        )

    def rendered(self) -> Rendered:
        """The page, rebuilt if older than STATUS_PAGE_STATE_MAX_AGE_S (on the event loop)."""
        now = time.monotonic()
        r = self._rendered
        if r is None or now - r.built_at >= self.settings.status_page_state_max_age_s:
            data = self.content()
            html = self._template.render(page=data).encode()
            body = json.dumps(data, separators=(",", ":")).encode()
            gz_html, gz_json = gzip.compress(html, 6, mtime=0), gzip.compress(body, 6, mtime=0)
            r = self._rendered = Rendered(html, body, gz_html, gz_json, now)
        return r
