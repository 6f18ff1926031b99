"""On-disk cost of a typical host's labelled series through the real Storage and compaction.

``python -m bench.tsdb_disk [--hours 24]``: feeds ``bench.hostgen`` reports (10 s interval, ~80
labelled series) an hour at a time into ``Storage`` (the real writer), compacts each closed hour,
then checkpoints the WAL and prints bytes per labelled sample per tier (the engine's blobs) and
the whole file. The file also holds the 13 host-level series in ``samples`` and their rollups
(today's format, unchanged by this engine), printed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from bench.hostgen import typical_host_reports
from statusdash.server import rollups
from statusdash.server.storage import Storage
from statusdash.server.tsdb.compact import compact
from statusdash.wire import MetricsReport

HOURS = 24.0


async def _feed(db: Path, start: datetime, hours: float) -> int:
    storage = Storage(db, "NORMAL")
    storage.open()
    n = 0
    try:
        batch: list[MetricsReport] = []
        reports = typical_host_reports(start, hours, seed=1)
        for i, r in enumerate(reports, start=1):
            batch.append(msgspec.convert(r, MetricsReport))
            if i % 360 == 0:
                await storage.ingest(batch)
                n += len(batch)
                batch = []
                end = start.timestamp() + i * 10
                with closing(sqlite3.connect(db, isolation_level=None)) as conn:
                    rollups.roll_up(conn, pause_s=0)
                    compact(conn, 3600, grace_s=0, now=end + 60, pause_s=0)
        if batch:
            await storage.ingest(batch)
            n += len(batch)
    finally:
        await storage.close()
    return n


def run(hours: float = HOURS) -> dict[str, Any]:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="statusdash-tsdb-") as tmp:
        db = Path(tmp) / "s.db"
        start = datetime(2026, 1, 5, tzinfo=UTC) - timedelta(hours=0)
        reports = asyncio.run(_feed(db, start, hours))
        with closing(sqlite3.connect(db, isolation_level=None)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            samples = sum(
                len(msgspec.msgpack.decode(b)) // 2
                for (b,) in conn.execute("SELECT data FROM series_head")
            )
            tiers = {
                str(t): (int(n), int(b), int(r))
                for t, n, b, r in conn.execute(
                    "SELECT tier, count(*), sum(length(data)), sum(rows) FROM series_chunks"
                    " GROUP BY tier"
                )
            }
            nseries = conn.execute("SELECT count(*) FROM series").fetchone()[0]
            head_bytes = conn.execute(
                "SELECT coalesce(sum(length(data)), 0) FROM series_head"
            ).fetchone()[0]
        raw_samples = _raw_samples(db) + samples
        query = _query_ms(db, start, hours)
        size = db.stat().st_size + sum(
            p.stat().st_size for p in db.parent.glob("s.db-*") if p.exists()
        )
    out: dict[str, Any] = {
        "hours": hours,
        "reports": reports,
        "series": nseries,
        "labelled_samples": raw_samples,
        "raw_bytes_per_sample": round(tiers.get("raw", (0, 0, 0))[1] / max(raw_samples, 1), 3),
        "tier_blob_bytes": {t: v[1] for t, v in tiers.items()},
        "chunks": {t: v[0] for t, v in tiers.items()},
        "head_bytes": head_bytes,
        "file_bytes_after_checkpoint": size,
        "file_mb_per_host_day": round(size / 1e6 * 24 / hours, 3),
        "query_ms": query,
        "writer_us_per_report": _writer_us(start),
        "seconds": round(time.monotonic() - t0, 1),
    }
    return out


def _query_ms(db: Path, start: datetime, hours: float, rounds: int = 30) -> dict[str, Any]:
    """p50/p99 ms of one series and of every disk.mount.percent series over the whole range."""
    from statusdash.server.tsdb.query import host_series, read_series

    end = start + timedelta(hours=hours)
    out: dict[str, Any] = {}
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        mounts = host_series(conn, 1, "disk.mount.percent")
        cases = {"one_series": mounts[:1], "all_disk_mount_percent": mounts}
        for name, refs in cases.items():
            for points in (300, 1440):
                times = []
                for _ in range(rounds):
                    t = time.perf_counter()
                    read_series(conn, refs, start, end, points)
                    times.append((time.perf_counter() - t) * 1000)
                times.sort()
                out[f"{name}_points{points}"] = {
                    "p50": round(times[len(times) // 2], 2),
                    "p99": round(times[-1], 2),
                    "series": len(refs),
                }
    return out


def _writer_us(start: datetime, n: int = 2000, rounds: int = 3) -> dict[str, float]:
    """CPU the labelled path adds to the writer per report: catalogue readers + head blob
    (series already known, as in steady state); the median of ``rounds`` with the range."""
    from statusdash.server.tsdb.head import Registry, readings

    reports = [
        msgspec.convert(r, MetricsReport) for r in typical_host_reports(start, n / 360, seed=2)
    ]
    reg = Registry(10**6)
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE TABLE series (host_id, metric, labels, first, last)")
        added: list[Any] = []
        for r in reports:  # register every series first
            reg.head_row(conn, 1, 0.0, readings(r), added, {})
        runs = []
        for _ in range(rounds):
            t = time.process_time()
            for r in reports:
                reg.head_row(conn, 1, r.collected_at.timestamp(), readings(r), added, {})
            runs.append((time.process_time() - t) / len(reports) * 1e6)
    runs.sort()
    return {
        "median": round(runs[len(runs) // 2], 1),
        "min": round(runs[0], 1),
        "max": round(runs[-1], 1),
    }


def _raw_samples(db: Path) -> int:
    from statusdash.server.tsdb.codec import decode_chunk

    n = 0
    with closing(sqlite3.connect(db)) as conn:
        for (b,) in conn.execute("SELECT data FROM series_chunks WHERE tier = 'raw'"):
            _, cols = decode_chunk(bytes(b))
            n += sum(1 for c in cols.values() for v in c if v is not None)
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--hours", type=float, default=HOURS)
    args = p.parse_args()
    print(json.dumps(run(args.hours), indent=2))


if __name__ == "__main__":
    main()
