"""History benchmark: bytes on disk per host-day in steady state, and history latency by tier.

Bytes. A host reporting every 10 s writes 8,640 raw rows, 1,440 one-minute rows and 24 one-hour
rows a day. *Steady state* is the database once every tier has been through insert, rollup and
pruning, so its B-tree pages have the fill they keep from then on (freed pages are reused, so the
file stops growing). We simulate it: HOSTS hosts report interleaved in time order for raw retention
+ 1 day (3 days), group-committed every 5 simulated minutes, with the real rollup job every 10
simulated minutes and the real retention job every simulated hour. Then ``dbstat`` gives each
tier's pages (table + every index, page slack included) divided by its rows: bytes per row. The
headline ``bytes_per_host_day`` is what one day of one host costs summed over the tiers that keep
it: raw + 1-minute + 1-hour bytes per row x rows per day. The steady footprint per host (each tier
x its retention) is reported beside it. Arrival ids start where a year of this fleet leaves them
(``--id-offset``): every raw row stores one, and they grow with age. The same rows also go into
two rejected variants of the raw table (``ALTERNATIVES``, see docs/history.md) to measure them.

Latency. One host, 30 days + 1 hour at 10 s (259,560 rows) through the same bulk path, rolled up
by the real job except the last minute (as the 10 s job leaves it); each query's median over
ROUNDS runs, through the tiers (``history.query``) and as a raw scan (``history.query_raw``).

Bulk path: the real schema (``ensure_schema``) and ``raw.insert_samples``, the insert
``Storage`` runs, in WAL mode with synchronous=NORMAL; only the HTTP and pydantic work is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from bench.history_fleet import (
    ALTERNATIVES,
    INTERVAL_S,
    T_START,
    add_hosts,
    fleet_rows,
    insert_rows,
)
from statusdash.server import history, rollups
from statusdash.server.db import connect, ensure_schema
from statusdash.server.storage import Storage
from statusdash.settings import Settings
from statusdash.wire import MetricsReport

DAY = 86400
HOSTS = 8
TARGET_BYTES_PER_HOST_DAY = 1_000_000
TARGET_SPEEDUP_30D = 20.0
TARGET_30D_MS = 50.0
ROUNDS = 15
# the settings' defaults (no .env read): raw 48 h, 1-minute 30 d, 1-hour 365 d
RETENTION = rollups.Retention.from_settings(Settings(_env_file=None))
ROWS_PER_DAY = {"raw": DAY // INTERVAL_S, "1m": 1440, "1h": 24}
KEEP_DAYS = {
    "raw": RETENTION.raw_s / DAY,
    "1m": RETENTION.minute_s / DAY,
    "1h": RETENTION.hour_s / DAY,
}
ID_OFFSET = HOSTS * ROWS_PER_DAY["raw"] * 365  # the ids a year of the simulated fleet used up


class BenchError(RuntimeError):
    """What the benchmark measured is wrong (tiers disagree with the raw data)."""


# --- bytes ---------------------------------------------------------------------------------------
def steady_state(
    work: Path, hosts: int = HOSTS, days: float = 3.0, id_offset: int = ID_OFFSET
) -> dict[str, Any]:
    db = work / "steady.db"
    ensure_schema(db)
    rollup_ms = prune_ms = 0.0
    alt_tables = [f"alt_{name}" for name in ALTERNATIVES]
    with closing(connect(db, "NORMAL")) as conn:
        for ddl, *_ in ALTERNATIVES.values():
            for sql in ddl:
                conn.execute(sql)
        if id_offset:
            for seq in ("samples_pending", "alt_rowid_index_rid64_whole_seconds"):
                conn.execute("INSERT INTO sqlite_sequence VALUES (?, ?)", (seq, id_offset))
        ids = add_hosts(conn, hosts)
        t, end = T_START, T_START + days * DAY
        while t < end:
            nxt = t + 300
            insert_rows(conn, list(fleet_rows(ids, t, nxt)), alternatives=True)
            if int(nxt) % 600 == 0:
                r = rollups.roll_up(conn, pause_s=0, now=nxt)
                rollup_ms = max(rollup_ms, r.max_txn_ms)
            if int(nxt) % 3600 == 0:
                p = rollups.prune(conn, RETENTION, now=nxt, pause_s=0)
                prune_ms = max(prune_ms, p.max_txn_ms)
                for alt in alt_tables:  # the alternatives pruned the same way
                    conn.execute(f"DELETE FROM {alt} WHERE ts < ?", (nxt - RETENTION.raw_s,))  # noqa: S608
            t = nxt
        size, trees = _dbstat(conn)
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema").fetchall())
        count = {
            t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # noqa: S608
            for t in ("samples", "rollup_1m", "rollup_1h", *alt_tables)
        }
        first_id = int(conn.execute("SELECT min(id) FROM samples").fetchone()[0])
        pending = int(conn.execute("SELECT count(*) FROM samples_pending").fetchone()[0])
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0]) * page
    tables = {"raw": "samples", "1m": "rollup_1m", "1h": "rollup_1h"}
    tiers: dict[str, Any] = {}
    for tier, table in tables.items():
        per_row = size[table] / count[table]
        tiers[tier] = {
            "bytes_per_row": round(per_row, 1),
            "bytes_per_host_day": round(per_row * ROWS_PER_DAY[tier]),
            "steady_bytes_per_host": round(per_row * ROWS_PER_DAY[tier] * KEEP_DAYS[tier]),
        }
    per_day = sum(v["bytes_per_host_day"] for v in tiers.values())
    rollup_day = per_day - tiers["raw"]["bytes_per_host_day"]
    alternatives = {
        name: {
            "raw_bytes_per_row": round(size[f"alt_{name}"] / count[f"alt_{name}"], 1),
            "bytes_per_host_day": round(
                size[f"alt_{name}"] / count[f"alt_{name}"] * ROWS_PER_DAY["raw"] + rollup_day
            ),
        }
        for name in ALTERNATIVES
    }
    footprint = sum(v["steady_bytes_per_host"] for v in tiers.values())
    return {
        "bytes_per_host_day": per_day,
        "bytes_per_host_day_ok": per_day <= TARGET_BYTES_PER_HOST_DAY,
        "raw_bytes_per_row": tiers["raw"]["bytes_per_row"],
        "minute_bytes_per_row": tiers["1m"]["bytes_per_row"],
        "hour_bytes_per_row": tiers["1h"]["bytes_per_row"],
        "steady_footprint_per_host_bytes": footprint,
        "steady_footprint_per_host_per_retention_day": round(footprint / KEEP_DAYS["1m"]),
        "rollup_max_txn_ms": round(rollup_ms, 1),
        "prune_max_txn_ms": round(prune_ms, 1),
        "alternatives": alternatives,
        "detail": {
            "hosts": hosts,
            "simulated_days": days,
            "first_raw_id": first_id,
            "pending_rows": pending,  # waiting for the next rollup; not counted above
            "pending_bytes": size.get("samples_pending", 0),
            "tiers": tiers,
            "rows": count,
            "raw_bytes_per_row_by_btree": {
                name: round(b / count[owner[name]], 1)
                for name, b in trees.items()
                if owner.get(name) in ("samples", *alt_tables)
            },
            "freelist_bytes": free,
            "file_bytes": db.stat().st_size,
        },
    }


def _dbstat(conn: sqlite3.Connection) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes of pages per table (its indexes included) and per B-tree (table or index)."""
    owner = {
        name: table for name, table in conn.execute("SELECT name, tbl_name FROM sqlite_schema")
    }
    per_table: dict[str, int] = {}
    per_tree: dict[str, int] = {}
    for name, pages in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name, name)
        per_table[table] = per_table.get(table, 0) + int(pages)
        per_tree[name] = int(pages)
    return per_table, per_tree


# --- latency -------------------------------------------------------------------------------------
def _median_ms(fn: Any, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def latency(work: Path, rounds: int = ROUNDS) -> dict[str, Any]:
    db = work / "month.db"
    ensure_schema(db)
    now = T_START + 30 * DAY + 3600
    with closing(connect(db, "NORMAL")) as conn:
        (host,) = add_hosts(conn, 1)
        t = now - 30 * DAY - 3600
        while t < now - 60:
            nxt = min(t + 6 * 3600, now - 60)
            insert_rows(conn, list(fleet_rows([host], t, nxt)), alternatives=False)
            t = nxt
        t0 = time.perf_counter()
        rolled = rollups.roll_up(conn, pause_s=0)
        rollup_s = time.perf_counter() - t0
        # the last minute, not rolled up (as the 10 s job leaves it)
        insert_rows(conn, list(fleet_rows([host], now - 60, now)), alternatives=False)
    reader = sqlite3.connect(db, check_same_thread=False)
    reader.execute("PRAGMA query_only=ON")
    out: dict[str, Any] = {
        "rollup_rows_per_s": round(rolled.rows / rollup_s),
        "raw_rows": rolled.rows + 6,
    }
    end = datetime.fromtimestamp(now, UTC)
    cases = (("24h", DAY, 120), ("30d", 30 * DAY, 120), ("30d_2000", 30 * DAY, 2000))
    for label, span, points in cases:
        start = datetime.fromtimestamp(now - span, UTC)
        args = (reader, host, "host-0", "cpu.percent", start, end, points)
        tiered = history.query(*args)
        raw = history.query_raw(*args)
        if sum(p.count for p in tiered.points) != sum(p.count for p in raw.points):
            raise BenchError(f"{label}: the {tiered.tier} tier and the raw scan count differently")
        t_ms = _median_ms(lambda a=args: history.query(*a), rounds)
        r_ms = _median_ms(lambda a=args: history.query_raw(*a), max(3, rounds // 3))
        out[label] = {
            "tier": tiered.tier,
            "points": points,
            "tiered_ms": round(t_ms, 2),
            "raw_scan_ms": round(r_ms, 1),
            "speedup": round(r_ms / t_ms, 1),
        }
    reader.close()
    out["ingest_under_jobs"] = asyncio.run(ingest_under_jobs(db, now))
    out["30d"]["speedup_ok"] = out["30d"]["speedup"] >= TARGET_SPEEDUP_30D
    out["30d"]["within_50ms_ok"] = out["30d"]["tiered_ms"] <= TARGET_30D_MS
    out["30d_2000"]["within_50ms_ok"] = out["30d_2000"]["tiered_ms"] <= TARGET_30D_MS
    return out


async def ingest_under_jobs(db: Path, now: float, seconds: float = 3.0) -> dict[str, Any]:
    """Ingest latency through the real Storage, alone and while the jobs do their worst.

    The worst: the month's first prune (28 days of raw rows, ~242,000 deletes), in the jobs'
    transactions and pauses, in a thread as the scheduler runs it; stopped when ingest ends.
    """
    logging.getLogger("statusdash.server.storage").setLevel(logging.ERROR)  # host-0 has no report
    storage = Storage(db, "NORMAL")
    storage.open()
    stamp = datetime.now(UTC).isoformat()
    reports = [
        msgspec.convert(
            {
                "schema_version": 1,
                "report_id": str(uuid.uuid4()),
                "host": f"agent-{i % 8}",
                "collected_at": stamp,
                "interval_s": 10,
                "cpu": {"percent": 12.5},
                "memory": {"percent": 40.0, "total": 1, "used": 1, "available": 1},
            },
            MetricsReport,
        )
        for i in range(int(seconds * 2 * 3000))
    ]
    feed = iter(reports)
    stop = threading.Event()
    jobs_stats: dict[str, Any] = {}

    def jobs() -> None:
        with closing(connect(db, "NORMAL")) as conn:
            # the month's rows arrived long ago: no replay window holds them back
            p = rollups.prune(conn, replace(RETENTION, replay_s=0), now=now, stop=stop.is_set)
            jobs_stats.update(deleted=p.deleted["raw"], transactions=p.transactions)
            jobs_stats["max_txn_ms"] = round(p.max_txn_ms, 1)

    async def phase(with_jobs: bool) -> dict[str, float]:
        lat: list[float] = []
        end = time.monotonic() + seconds
        thread = threading.Thread(target=jobs) if with_jobs else None
        if thread is not None:
            thread.start()

        async def agent() -> None:
            while time.monotonic() < end:
                t0 = time.perf_counter()
                await storage.ingest([next(feed)])
                lat.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.002)

        await asyncio.gather(*(agent() for _ in range(8)))
        if thread is not None:
            stop.set()
            await asyncio.to_thread(thread.join)
        lat.sort()
        return {
            "reports": len(lat),
            "p50_ms": round(lat[len(lat) // 2], 2),
            "p99_ms": round(lat[int(len(lat) * 0.99)], 2),
            "max_ms": round(lat[-1], 1),
        }

    try:
        alone = await phase(False)
        beside = await phase(True)
    finally:
        await storage.close()
    return {"alone": alone, "with_jobs": beside, "jobs": jobs_stats}


def run(hosts: int = HOSTS, rounds: int = ROUNDS, id_offset: int = ID_OFFSET) -> dict[str, Any]:
    """Both parts in a temporary directory; figures as a dict (see the module docstring)."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="statusdash-history-") as tmp:
        work = Path(tmp)
        out: dict[str, Any] = {
            "storage": steady_state(work, hosts, id_offset=id_offset),
            "latency": latency(work, rounds),
        }
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.history_bench", description=__doc__)
    ap.add_argument("--hosts", type=int, default=HOSTS)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument(
        "--id-offset",
        type=int,
        default=ID_OFFSET,
        help=f"first raw row id - 1 (default {ID_OFFSET:,}: a year of the simulated fleet)",
    )
    a = ap.parse_args(argv)
    try:
        out = run(a.hosts, a.rounds, a.id_offset)
    except BenchError as exc:
        print(f"history benchmark FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
