"""The in-memory cache of each host's latest report: serves the fleet view without a query."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from statusdash.schema import HostCounts, HostStatus, HostSummary
from statusdash.wire import MetricsReport, worst_disk

STALE_AFTER = 2.0  # intervals without a report before a host is stale
DOWN_AFTER = 5.0  # ... and down
RECENT = 20  # CPU values kept per host for the fleet's sparklines


@dataclass
class HostState:
    """A host's newest report (the wire struct ingest decoded) and when we last heard from it."""

    name: str
    latest: MetricsReport
    last_seen: datetime
    interval_s: float
    cpu_recent: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))
    cert_not_after: datetime | None = None  # of the client certificate it last reported with

    def note(self, report: MetricsReport) -> None:
        """Make ``report`` the latest and remember its CPU for the sparkline."""
        self.latest = report
        if report.cpu is not None:
            self.cpu_recent.append(report.cpu.percent)


def host_status(last_seen: datetime, interval_s: float, now: datetime) -> HostStatus:
    """Up, stale (no report for 2x its interval) or down (5x)."""
    age = (now - last_seen).total_seconds()
    if age > DOWN_AFTER * interval_s:
        return HostStatus.down
    if age > STALE_AFTER * interval_s:
        return HostStatus.stale
    return HostStatus.up


def summarize(
    state: HostState,
    now: datetime,
    alerts_active: int = 0,
    tags: Mapping[str, str] | None = None,
) -> HostSummary:
    """The fleet row of a host; ``tags`` its effective tags (``Tags.of``), else the agent's."""
    r = state.latest
    worst = worst_disk(r.disks)
    uptime = None
    if r.system and r.system.boot_time:
        uptime = max(0.0, (r.collected_at - r.system.boot_time).total_seconds())
    return HostSummary(
        host=state.name,
        status=host_status(state.last_seen, state.interval_s, now),
        last_seen=state.last_seen,
        seen_ago_s=max(0.0, (now - state.last_seen).total_seconds()),
        collected_at=r.collected_at,
        interval_s=state.interval_s,
        os=r.system.os if r.system else "",
        cpu_count=r.system.cpu_count if r.system else None,
        cpu_percent=r.cpu.percent if r.cpu else None,
        memory_percent=r.memory.percent if r.memory else None,
        swap_percent=r.swap.percent if r.swap else None,
        disk_percent=worst.percent if worst else None,
        disk_mount=worst.mount if worst else None,
        load_1m=r.load.m1 if r.load else None,
        net_rx_bytes_s=r.net.rx_bytes_s if r.net else None,
        net_tx_bytes_s=r.net.tx_bytes_s if r.net else None,
        uptime_s=uptime,
        alerts_active=alerts_active,
        cpu_recent=list(state.cpu_recent),
        tags=dict(r.tags if tags is None else tags),
    )


class LatestCache:
    """Host name -> newest state. Touched only from the event loop."""

    def __init__(self) -> None:
        self._hosts: dict[str, HostState] = {}

    def put(self, state: HostState) -> None:
        """Keep the newest report by collected_at, and the latest time we heard from the host."""
        old = self._hosts.get(state.name)
        if old is None:
            state.note(state.latest)
            self._hosts[state.name] = state
            return
        if state.latest.collected_at > old.latest.collected_at:
            old.note(state.latest)
            old.interval_s = state.interval_s
        old.last_seen = max(old.last_seen, state.last_seen)

    def note_cert(self, name: str, not_after: float | None) -> None:
        """Remember when the certificate ``name`` last reported with ends (mTLS peer)."""
        state = self._hosts.get(name)
        if state is not None and not_after is not None:
            state.cert_not_after = datetime.fromtimestamp(not_after, UTC)

    def remove(self, name: str) -> None:
        """Forget ``name`` (``hosts rm``); its next report makes it a new entry."""
        self._hosts.pop(name, None)

    def get(self, name: str) -> HostState | None:
        return self._hosts.get(name)

    def newest_collected(self, name: str) -> datetime | None:
        """The ``collected_at`` of the host's newest report held (None for an unknown host)."""
        state = self._hosts.get(name)
        return None if state is None else state.latest.collected_at

    def all(self) -> list[HostState]:
        return [self._hosts[k] for k in sorted(self._hosts)]

    def __len__(self) -> int:
        return len(self._hosts)

    def counts(self, now: datetime) -> HostCounts:
        counts = HostCounts(total=len(self._hosts))
        for s in self._hosts.values():
            status = host_status(s.last_seen, s.interval_s, now)
            setattr(counts, status.value, getattr(counts, status.value) + 1)
        return counts
