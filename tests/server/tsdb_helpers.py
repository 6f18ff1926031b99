"""Reports with labelled series, stored through the real Storage into a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from statusdash.schema import IngestAck
from statusdash.server.storage import Storage
from statusdash.server.tsdb import compact
from statusdash.server.tsdb.head import readings
from statusdash.wire import MetricsReport
from tests.conftest import make_report

HOUR = 3600


def rich_report(at: datetime, i: int, *, data_mount: bool = True, **extra: Any) -> dict[str, Any]:
    """A report with cores, mounts, devices, interfaces (and lo), sensors, services, processes."""
    disks = [{"mount": "/", "total": 100 << 30, "used": (50 << 30) + i, "percent": 50 + i % 7}]
    if data_mount:
        disks.append({"mount": "/data", "total": 1 << 40, "used": 1 << 39, "percent": 10 + i % 3})
    procs = [
        {
            "pid": 10 + k,
            "name": f"p{(i + k) % 5}",
            "cpu_percent": k + i % 4,
            "memory_percent": 1.0,
            "rss": 1000 * k,
        }
        for k in range(3)
    ]
    r = make_report(
        at=at,
        cpu=float(i % 100),
        disks=disks,
        disk_io={
            "read_bytes_s": 1.0,
            "write_bytes_s": 2.0,
            "devices": {"sda": {"read_bytes_s": 100.0 * (i % 11), "write_bytes_s": 5.0}},
        },
        net={
            "rx_bytes_s": 10.0,
            "tx_bytes_s": 20.0,
            "interfaces": {
                "eth0": {"rx_bytes_s": 1000.0 + i, "tx_bytes_s": 50.0, "errors_s": 0.25},
                "lo": {"rx_bytes_s": 9e6, "tx_bytes_s": 9e6},
            },
        },
        temps=[{"sensor": "coretemp", "label": "Core 0", "current": 40.5 + i % 5}],
        processes={"count": 100, "top_cpu": procs[:2], "top_memory": procs[1:]},
        services=[
            {
                "name": "web",
                "kind": "http",
                "status": "healthy" if i % 4 else "unhealthy",
                "checked_at": at.isoformat(),
                "latency_ms": 3.5 + i % 9,
            }
        ],
    )
    r["cpu"]["per_core"] = [float((i * (c + 1)) % 100) for c in range(4)]
    r.update(extra)
    return r


def convert(reports: Sequence[dict[str, Any]]) -> list[MetricsReport]:
    return [msgspec.convert(r, MetricsReport) for r in reports]


def store(db: Path, reports: Sequence[dict[str, Any]], **kw: Any) -> tuple[IngestAck, Storage]:
    """Ingest through a real Storage (opened and closed here); the ack and the closed storage."""

    async def main() -> tuple[IngestAck, Storage]:
        storage = Storage(db, "NORMAL", **kw)
        storage.open()
        try:
            return await storage.ingest(convert(reports)), storage
        finally:
            await storage.close()

    return asyncio.run(main())


def expected(
    reports: Sequence[dict[str, Any]],
) -> dict[tuple[str, tuple[str, ...]], list[tuple[float, int]]]:
    """(metric, labels) -> [(collected_at epoch s, scaled value)], as the catalogue reads them."""
    out: dict[tuple[str, tuple[str, ...]], list[tuple[float, int]]] = {}
    for r in convert(reports):
        for key, v in readings(r):
            out.setdefault(key, []).append((r.collected_at.timestamp(), v))
    return out


def run_compact(db: Path, now: float, span_s: int = HOUR) -> compact.CompactResult:
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        return compact.compact(conn, span_s, grace_s=0, now=now, pause_s=0)


def series_at(start: datetime, n: int, step_s: int = 10, **kw: Any) -> list[dict[str, Any]]:
    return [rich_report(start + timedelta(seconds=step_s * i), i, **kw) for i in range(n)]
