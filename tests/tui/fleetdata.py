"""A frozen, deterministic fleet built from schema models, for snapshots and fast Pilot tests."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from statusdash.schema import (
    AlertPublic,
    AlertState,
    HistoryPoint,
    HistorySeries,
    HostCounts,
    HostDetail,
    HostStatus,
    HostSummary,
    Sentiment,
    ServiceHealth,
    Thresholds,
)
from statusdash.tui.source import MemorySource
from statusdash.wire import (
    CpuStats,
    Disk,
    HealthStatus,
    LoadAvg,
    Memory,
    MetricsReport,
    Net,
    Processes,
    ProcessInfo,
    ServiceCheckResult,
    Swap,
    SystemInfo,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
FRAMES = 24
RECENT = 20  # CPU values the server keeps per host (``HostSummary.cpu_recent``)
# The server's alert thresholds; memory is stricter than the local default (85) so the
# snapshots show the server's value in use (web-03 at 79% is flagged).
SERVER_THRESHOLDS = Thresholds(cpu=90, memory=75, disk=90)
RANGE_S = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}

# host, status, cpu base, mem, disk, load, rx, tx, uptime, seen, alerts
BASE: list[tuple[str, HostStatus, float, float, float, float, float, float, float, float, int]] = [
    ("platform-vps", HostStatus.up, 23, 61, 48, 0.42, 1.2e6, 340e3, 41 * 86400, 2, 0),
    ("vpn-gateway", HostStatus.up, 4, 22, 31, 0.05, 88e3, 91e3, 12 * 86400, 3, 0),
    ("apricot", HostStatus.up, 96, 88, 93, 3.9, 4.5e6, 1.1e6, 2 * 3600, 1, 2),
    ("black", HostStatus.stale, 12, 45, 70, 0.3, 0, 0, 5 * 86400, 34, 0),
    ("cherry", HostStatus.down, 0, 0, 55, 0, 0, 0, 9 * 86400, 3 * 3600, 0),
]
OS = {"vpn-gateway": "Alpine Linux v3.20", "apricot": "Ubuntu 24.04.1 LTS"}
EXTRA = 18  # web-01.. hosts to fill the larger snapshots and give sorting something to do


def _rows() -> list[
    tuple[str, HostStatus, float, float, float, float, float, float, float, float, int]
]:
    rows = list(BASE)
    for i in range(1, EXTRA + 1):
        rows.append(
            (
                f"web-{i:02d}",
                HostStatus.up,
                (i * 37) % 80 + 3,
                (i * 23) % 70 + 10,
                (i * 13) % 60 + 20,
                ((i * 7) % 40) / 10,
                (i * 173_000) % 9_000_000,
                (i * 61_000) % 3_000_000,
                (i * 5 + 1) * 86400,
                (i % 3) + 1,
                0,
            )
        )
    return rows


def cpu_at(base: float, i: int, frame: int) -> float:
    if base == 0:
        return 0.0
    return max(0.0, min(100.0, base + 8 * math.sin(frame / 2.5 + i)))


def recent_cpu(base: float, i: int, frame: int, status: HostStatus) -> list[float]:
    """What the server remembers of a host's CPU: the last 20 reports, oldest first.

    A stale host's memory stops a few reports back; a down host has none since the server
    started.
    """
    if status is HostStatus.down:
        return []
    last = frame if status is HostStatus.up else -30
    return [cpu_at(base, i, k) for k in range(last - RECENT + 1, last + 1)]


def frames(n: int = FRAMES) -> list[list[HostSummary]]:
    """``n`` successive answers of ``GET /api/hosts``, one second apart, the last one at NOW-1s."""
    out = []
    for f in range(n):
        at = NOW - timedelta(seconds=n - f)
        frame = []
        for i, (host, status, cpu, mem, disk, load, rx, tx, up, seen, alerts) in enumerate(_rows()):
            collected = at if status is HostStatus.up else NOW - timedelta(seconds=seen)
            frame.append(
                HostSummary(
                    host=host,
                    status=status,
                    last_seen=collected,
                    seen_ago_s=seen,
                    collected_at=collected,
                    interval_s=1.0,
                    os=OS.get(host, "Debian GNU/Linux 12 (bookworm)"),
                    cpu_count=8,
                    cpu_percent=None if status is HostStatus.down else cpu_at(cpu, i, f),
                    memory_percent=None if status is HostStatus.down else mem,
                    disk_percent=disk,
                    disk_mount="/",
                    load_1m=None if status is HostStatus.down else load,
                    net_rx_bytes_s=None if status is HostStatus.down else rx,
                    net_tx_bytes_s=None if status is HostStatus.down else tx,
                    uptime_s=up,
                    alerts_active=alerts,
                    cpu_recent=recent_cpu(cpu, i, f, status),
                )
            )
        out.append(frame)
    return out


def alerts() -> list[AlertPublic]:
    t = NOW - timedelta(minutes=2)
    return [
        AlertPublic(
            id=1,
            rule="cpu",
            host="apricot",
            state=AlertState.firing,
            value=97,
            threshold=90,
            message="cpu 97% > 90%",
            started_at=t,
            fired_at=t,
        ),
        AlertPublic(
            id=2,
            rule="disk",
            host="apricot",
            subject="/",
            state=AlertState.firing,
            value=93,
            threshold=90,
            message="disk / 93% > 90%",
            started_at=t - timedelta(minutes=40),
            fired_at=t - timedelta(minutes=38),
        ),
        AlertPublic(
            id=3,
            rule="memory",
            host="web-03",
            state=AlertState.resolved,
            value=86,
            threshold=85,
            message="memory 86% > 85%",
            started_at=t - timedelta(hours=3),
            fired_at=t - timedelta(hours=3),
            resolved_at=t - timedelta(hours=2),
        ),
    ]


def services() -> list[ServiceHealth]:
    return [
        ServiceHealth(
            name="image-generator",
            status=HealthStatus.healthy,
            last_check=NOW - timedelta(seconds=57),
            metrics={"queue": 42},
        ),
        ServiceHealth(
            name="seo",
            status=HealthStatus.unhealthy,
            last_check=NOW - timedelta(seconds=59),
            error="refused",
        ),
        ServiceHealth(
            name="nginx",
            host="platform-vps",
            status=HealthStatus.healthy,
            last_check=NOW - timedelta(seconds=5),
            metrics={"latency_ms": 3},
        ),
    ]


def sentiment() -> Sentiment:
    return Sentiment(
        status="degraded",
        services=services(),
        hosts=HostCounts(total=23, up=21, stale=1, down=1),
        alerts_active=2,
        thresholds=SERVER_THRESHOLDS,
    )


def detail(summary: HostSummary) -> HostDetail:
    h = summary.host
    report = msgspec.convert(
        dict(
            schema_version=1,
            report_id=uuid.uuid5(uuid.NAMESPACE_DNS, h),
            host=h,
            collected_at=summary.collected_at,
            interval_s=1.0,
            system=SystemInfo(
                hostname=h,
                os=summary.os,
                kernel="6.1.0-26-amd64",
                arch="x86_64",
                boot_time=NOW - timedelta(seconds=summary.uptime_s or 0),
                cpu_count=8,
            ),
            cpu=CpuStats(percent=summary.cpu_percent or 0.0),
            load=LoadAvg(m1=summary.load_1m or 0, m5=0.5, m15=0.61),
            memory=Memory(
                percent=summary.memory_percent or 0.0,
                total=16 * 2**30,
                used=int(16 * 2**30 * (summary.memory_percent or 0) / 100),
                available=int(16 * 2**30 * (100 - (summary.memory_percent or 0)) / 100),
            ),
            swap=Swap(percent=3.0, total=2 * 2**30, used=int(0.06 * 2**30)),
            disks=[
                Disk(
                    mount="/",
                    fstype="ext4",
                    total=500 * 10**9,
                    used=int(465e9),
                    percent=summary.disk_percent or 0.0,
                ),
                Disk(mount="/data", fstype="xfs", total=4 * 10**12, used=int(1.6e12), percent=41.0),
            ],
            net=Net(rx_bytes_s=summary.net_rx_bytes_s, tx_bytes_s=summary.net_tx_bytes_s),
            processes=Processes(
                count=312,
                top_cpu=[
                    ProcessInfo(
                        pid=812,
                        name="postgres",
                        user="postgres",
                        cpu_percent=312.0,
                        memory_percent=13.0,
                        rss=int(2.1 * 2**30),
                    ),
                    ProcessInfo(
                        pid=1201,
                        name="python3",
                        user="app",
                        cpu_percent=45.0,
                        memory_percent=2.0,
                        rss=310 * 2**20,
                    ),
                    ProcessInfo(
                        pid=97,
                        name="nginx",
                        user="www-data",
                        cpu_percent=3.0,
                        memory_percent=0.4,
                        rss=48 * 2**20,
                    ),
                ],
            ),
            services=[
                ServiceCheckResult(
                    name="nginx",
                    kind="http",
                    status=HealthStatus.healthy,
                    checked_at=NOW - timedelta(seconds=5),
                    latency_ms=3.2,
                ),
                ServiceCheckResult(
                    name="backup",
                    kind="systemd",
                    status=HealthStatus.unhealthy,
                    checked_at=NOW - timedelta(seconds=5),
                    detail="failed",
                ),
            ],
        ),
        MetricsReport,
    )
    host_alerts = [a for a in alerts() if a.host == h]
    return HostDetail(summary=summary, report=report, alerts=host_alerts)


def series(host: str, metric: str, since: str, points: int) -> HistorySeries:
    """A deterministic wave per metric over the range, with a gap to show missing data."""
    span = RANGE_S.get(since, 3600)
    bucket = span / points
    start = NOW - timedelta(seconds=span)
    top = {"cpu.percent": 100.0, "memory.percent": 100.0}.get(metric, 4e6)
    phase = sum(map(ord, host + metric)) % 7
    pts = []
    for k in range(points):
        if points // 3 <= k < points // 3 + 3:
            continue  # the agent was away for a moment
        x = k / points
        v = top * (0.35 + 0.3 * math.sin(6.28 * x * 3 + phase) * (0.5 + x / 2))
        v = max(0.0, min(top, v))
        pts.append(
            HistoryPoint(
                t=start + timedelta(seconds=k * bucket),
                avg=v,
                min=v * 0.8,
                max=min(top, v * 1.2),
                count=3,
            )
        )
    return HistorySeries(
        host=host, metric=metric, since=start, until=NOW, bucket_s=bucket, points=pts
    )


def memory_source(n_frames: int = FRAMES) -> MemorySource:
    fr = frames(n_frames)
    return MemorySource(
        frames=fr,
        sentiment_=sentiment(),
        alerts_=alerts(),
        services_=services(),
        details={h.host: detail(h) for h in fr[-1]},
        series=series,
    )
