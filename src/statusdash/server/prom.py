"""``GET /metrics`` for Prometheus: the server's own health and, with METRICS_FLEET, the fleet's.

Each app has its own :class:`ServerMetrics` (a ``CollectorRegistry`` of its own, never the
global one, so a test process can build many apps). Only two instruments are live, because only
they see single events: the commit-latency histogram (observed by the storage writer, once per
commit) and the refused-ingest counter (an ASGI middleware on the two ingest routes). Everything
else is read at scrape time from the counters the services keep anyway (:class:`Scrape`), and the
fleet's values from the in-memory cache of latest reports, never per report. Every name is in
docs/metrics.md; the fleet's names derive from ``catalog.METRICS``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from statusdash import __version__, catalog
from statusdash.schema import HostStatus
from statusdash.server import rollups
from statusdash.server.cache import host_status
from statusdash.wire import MetricsReport

if TYPE_CHECKING:
    from statusdash.server.accept import PacedServer
    from statusdash.server.conns import ConnGuard
    from statusdash.server.context import ServerContext

PREFIX = "statusdash_"
# The catalogue's units as Prometheus suffixes (base units; a percent stays a percent).
UNIT_SUFFIX: dict[str, str] = {"%": "percent", "B/s": "bytes_per_second", "load": "", "count": ""}
_SPELLED = ("_bytes_s", "_percent")  # the catalogue's own spelling of a unit in a name
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
INGEST_PATHS = ("/api/metrics/report", "/api/metrics/batch")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")  # an error code we made; anything else: http_<status>
_ERROR_BODY_MAX = 4096


def prom_name(m: catalog.Metric) -> str:
    """The Prometheus name of a host-level catalogue series: ``cpu.percent`` ->
    ``statusdash_cpu_percent``, ``net.rx_bytes_s`` -> ``statusdash_net_rx_bytes_per_second``."""
    base = m.name.replace(".", "_")
    for spelled in _SPELLED:
        base = base.removesuffix(spelled)
    suffix = UNIT_SUFFIX.get(m.unit, "")
    return f"{PREFIX}{base}_{suffix}" if suffix else f"{PREFIX}{base}"


def fleet_series() -> list[tuple[str, catalog.Metric]]:
    """Each host-level catalogue series with its Prometheus name (labelled ones go by remote
    write: one giant scrape is not the way to move them)."""
    return [(prom_name(m), m) for m in catalog.METRICS if not m.labels]


class ServerMetrics:
    """The live instruments of one app, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commit_seconds = Histogram(
            f"{PREFIX}storage_commit_seconds",
            "Time of one storage commit (one group of reports), seconds.",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.ingest_refused = Counter(
            f"{PREFIX}ingest_refused_requests",
            "Ingest requests answered with an error, by the answer's error code.",
            ["reason"],
            registry=self.registry,
        )


class CountRefusals:
    """ASGI middleware: count the ingest routes' error answers by their ``error`` code."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in INGEST_PATHS:
            await self.app(scope, receive, send)
            return
        status = 0
        body = bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400:
                if len(body) < _ERROR_BODY_MAX:
                    body.extend(message.get("body", b"")[: _ERROR_BODY_MAX - len(body)])
                if not message.get("more_body", False):
                    self.counter.labels(refusal_reason(status, bytes(body))).inc()
            await send(message)

        await self.app(scope, receive, watch)


def refusal_reason(status: int, body: bytes) -> str:
    """The ``error`` code of an error answer (ours, so a bounded set), else ``http_<status>``."""
    try:
        code = json.loads(body).get("error")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and _CODE.fullmatch(code) else f"http_{status}"


@dataclass(frozen=True, slots=True)
class _Host:
    """One host as a scrape sees it: copied on the loop, read in the render thread."""

    name: str
    latest: MetricsReport
    last_seen: datetime
    interval_s: float


@dataclass(frozen=True, slots=True)
class Net:
    """The connection-level counters of the server that carried the scrape, if it is ours."""

    guard: ConnGuard | None
    paced: tuple[PacedServer, ...]


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}{name}", doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}{name}", doc, value=value)


class Scrape(Collector):
    """One scrape: the live registry plus everything read now from the services and the cache.

    Built on the event loop from copies of what only the loop may walk (hosts, open alerts,
    dicts); collected in a worker thread, where the rest is plain integer counters.
    """

    def __init__(
        self, ctx: ServerContext, net: Net, rollup_pending: int | None, now: datetime
    ) -> None:
        self.ctx = ctx
        self.net = net
        self.rollup_pending = rollup_pending
        self.now = now
        # (name, latest, last seen, interval): the loop replaces a state's report; a copy is
        # one report per host throughout the scrape.
        self.hosts = [
            _Host(s.name, s.latest, s.last_seen, s.interval_s) for s in ctx.storage.cache.all()
        ]
        self.alerts = [
            (a.state.value, a.severity) for a in ctx.alerting.service.engine.open.values()
        ]
        self.subscribers = len(ctx.alerting.hub.subscribers)
        self.rate_limited = sum(ctx.storage.refused.values())  # a dict the loop adds hosts to
        self.jobs = sorted((n, j.runs, j.failures) for n, j in ctx.jobs.scheduler.jobs.items())

    def collect(self) -> Iterator[Metric]:
        yield from self.ctx.metrics.registry.collect()
        info = GaugeMetricFamily(f"{PREFIX}build_info", "The server's version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield from self._ingest()
        yield from self._services()
        yield from self._net()
        yield from self._fleet_counts()

    def _ingest(self) -> Iterator[Metric]:
        storage = self.ctx.storage
        reports = CounterMetricFamily(
            f"{PREFIX}ingest_reports",
            "Reports received by outcome: stored, already stored, refused by the per-host limit.",
            labels=["outcome"],
        )
        reports.add_metric(["accepted"], storage.accepted)
        reports.add_metric(["duplicate"], storage.duplicates)
        reports.add_metric(["rate_limited"], self.rate_limited)
        yield reports
        yield _counter("storage_commits", "Storage commits (groups of reports).", storage.commits)
        yield _counter(
            "series_dropped_values",
            "Labelled values dropped because their host had MAX_SERIES_PER_HOST series already.",
            storage.series.dropped_total,
        )
        yield _gauge(
            "storage_queue_requests",
            "Ingest requests waiting for the storage writer.",
            storage.queue_depth(),
        )

    def _services(self) -> Iterator[Metric]:
        hub, notifier = self.ctx.alerting.hub, self.ctx.alerting.notifier
        yield _gauge("stream_subscribers", "Open WebSocket stream subscriptions.", self.subscribers)
        yield _counter("stream_events_published", "Events published to the stream.", hub.published)
        yield _counter(
            "stream_resyncs", "Times a subscriber fell behind and was sent a resync.", hub.resyncs
        )
        yield _counter(
            "stream_subscribers_dropped",
            "Subscribers closed because they fell too far behind.",
            hub.dropped,
        )
        yield _counter("notifications_sent", "Notices delivered to a target.", notifier.delivered)
        yield _counter(
            "notifications_failed", "Notices given up on after every attempt.", notifier.failed
        )
        if self.rollup_pending is not None:
            yield _gauge(
                "rollup_pending_rows",
                "Raw rows not yet rolled up into the 1-minute and 1-hour tiers (rollup lag).",
                self.rollup_pending,
            )
        runs = CounterMetricFamily(f"{PREFIX}job_runs", "Runs of a server job.", labels=["job"])
        fails = CounterMetricFamily(
            f"{PREFIX}job_failures", "Runs of a server job that failed.", labels=["job"]
        )
        for name, n_runs, n_failures in self.jobs:
            runs.add_metric([name], n_runs)
            fails.add_metric([name], n_failures)
        yield runs
        yield fails
        open_alerts = GaugeMetricFamily(
            f"{PREFIX}alerts_open",
            "Open alerts by state and severity.",
            labels=["state", "severity"],
        )
        counts: dict[tuple[str, str], int] = {}
        for key in self.alerts:
            counts[key] = counts.get(key, 0) + 1
        for (state, severity), n in sorted(counts.items()):
            open_alerts.add_metric([state, severity], n)
        yield open_alerts

    def _net(self) -> Iterator[Metric]:
        guard = self.net.guard
        if guard is not None:
            yield _counter(
                "conn_refused",
                "Connections closed at once: the caps on unauthenticated ones were full.",
                guard.refused,
            )
            yield _counter(
                "conn_timed_out",
                "Unauthenticated connections closed: request headers not complete in time.",
                guard.timed_out,
            )
            yield _gauge(
                "conn_unauthenticated_open",
                "Unauthenticated connections open.",
                guard.anonymous_open,
            )
        if self.net.paced:
            paced = self.net.paced
            yield _counter(
                "tls_accepted",
                "TCP connections accepted for a TLS handshake.",
                sum(p.accepted for p in paced),
            )
            yield _counter(
                "tls_accept_paused_seconds",
                "Time accepts were paused: the event loop ran late or handshakes were at the cap.",
                sum(p.paused_s for p in paced),
            )
            yield _gauge(
                "tls_handshakes_in_progress",
                "TLS handshakes under way.",
                sum(p.in_handshake for p in paced),
            )

    def _status(self, state: _Host) -> HostStatus:
        return host_status(state.last_seen, state.interval_s, self.now)

    def _fleet_counts(self) -> Iterator[Metric]:
        hosts = GaugeMetricFamily(f"{PREFIX}hosts", "Known hosts by status.", labels=["status"])
        counts = dict.fromkeys(HostStatus, 0)
        for state in self.hosts:
            counts[self._status(state)] += 1
        for status, n in counts.items():
            hosts.add_metric([status.value], n)
        yield hosts

    def fleet_text(self) -> str:
        """The fleet's families, written directly: prometheus_client's per-sample objects cost
        ~30 us a sample, 5 s for 10,000 hosts (bench.metrics_scrape); this is the same text."""
        if not self.ctx.settings.metrics_fleet:
            return ""
        hosts = [(f'{{host="{_label(s.name)}"}} ', s) for s in self.hosts]
        statuses = [self._status(s) for s in self.hosts]
        out: list[str] = []
        for name, m in fleet_series():
            _head(out, name, f"{m.description} (series {m.name}, unit {m.unit}).")
            for labels, state in hosts:
                v = m.read(state.latest)
                if v is not None:
                    out.append(f"{name}{labels}{float(v)!r}\n")
        up, status, seen = (
            f"{PREFIX}host_{n}" for n in ("up", "status", "last_report_timestamp_seconds")
        )
        _head(out, up, "1 if the host is up, else 0 (stale or down).")
        out += [
            f"{up}{labels}{int(st is HostStatus.up)}\n"
            for (labels, _), st in zip(hosts, statuses, strict=True)
        ]
        _head(out, status, "The host's status (up, stale or down) as a label; the value is 1.")
        for (labels, _), st in zip(hosts, statuses, strict=True):
            out.append(f'{status}{labels[:-2]},status="{st.value}"}} 1\n')
        _head(out, seen, "When the host's latest report was collected, Unix time.")
        out += [f"{seen}{labels}{s.latest.collected_at.timestamp()!r}\n" for labels, s in hosts]
        return "".join(out)


def _label(value: str) -> str:
    """A label value escaped for the text format (host ids never need it; kept anyway)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def _head(out: list[str], name: str, doc: str) -> None:
    doc = doc.replace("\\", "\\\\").replace("\n", "\\n")
    out.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")


def net_of(scope: Mapping[str, Any], loop: object) -> Net:
    """The guard of the scrape's connection and the paced TLS servers of its loop."""
    from statusdash.server.conns import guard_of

    paced: Iterable[PacedServer] = getattr(loop, "paced_servers", ())
    return Net(guard_of(scope), tuple(paced))


def rollup_pending(ctx: ServerContext) -> int | None:
    """Raw rows waiting for the rollup (None if the database cannot say right now)."""
    try:
        return rollups.lag(ctx.readers.get())
    except sqlite3.Error:
        return None


def render(scrape: Scrape) -> bytes:
    """The text exposition of one scrape."""
    return generate_latest(scrape) + scrape.fleet_text().encode()
