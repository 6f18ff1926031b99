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
x its retention) is reported beside it. The same rows also go into a narrower raw table proposed
for the lead (scaled integers, 8-byte report key, no unique index) to measure what it would save.

Latency. One host, 30 days + 1 hour at 10 s (259,560 rows) through the same bulk path, rolled up
by the real job except the last minute (as the 10 s job leaves it); each query's median over
ROUNDS runs, through the tiers (``history.query``) and as a raw scan (``history.query_raw``).

Bulk path: the real schema (``make_engine``) and the columns ``Storage`` inserts, in WAL mode with
synchronous=NORMAL; only the HTTP and pydantic work of ingest is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from statusdash.schema import MetricsReport
from statusdash.server import history, rollups
from statusdash.server.db import connect, make_engine
from statusdash.server.rollup_models import COLUMNS, SCALES, scale_value
from statusdash.server.storage import Storage

INTERVAL_S = 10
DAY = 86400
HOSTS = 8
TARGET_BYTES_PER_HOST_DAY = 1_000_000
TARGET_SPEEDUP_30D = 20.0
TARGET_30D_MS = 50.0
ROUNDS = 15
RETENTION = rollups.Retention()  # the defaults: raw 48 h, 1-minute 30 d, 1-hour 365 d
ROWS_PER_DAY = {"raw": DAY // INTERVAL_S, "1m": 1440, "1h": 24}
KEEP_DAYS = {"raw": RETENTION.raw_s / DAY, "1m": RETENTION.minute_s / DAY, "1h": 365.0}
_POOL = 10_007
T_START = 1_789_999_200.0  # an hour boundary


class BenchError(RuntimeError):
    """What the benchmark measured is wrong (tiers disagree with the raw data)."""


def _pool(seed: int = 1) -> list[tuple[float, ...]]:
    """Report values shaped like the agent's: 0.01 percentages, float byte rates, integers."""
    rng = random.Random(seed)
    out: list[tuple[float, ...]] = []
    for _ in range(_POOL):
        swap = 0.0 if rng.random() < 0.7 else round(rng.uniform(0, 20), 2)
        out.append(
            (
                round(rng.uniform(0, 100), 2),  # cpu
                round(rng.uniform(0, 5), 2),  # iowait
                round(rng.uniform(30, 70), 2),  # mem
                swap,
                round(rng.uniform(0, 4), 2),  # load1
                round(rng.uniform(0, 3), 2),
                round(rng.uniform(0, 2), 2),
                round(rng.uniform(40, 60), 2),  # disk
                rng.uniform(1e3, 1e7),  # net rx bytes/s
                rng.uniform(1e3, 1e6),
                rng.uniform(0, 5e6),  # disk io
                rng.uniform(0, 5e6),
                float(rng.randint(100, 400)),  # processes
            )
        )
    return out


POOL = _pool()
_INSERT = (
    f"INSERT INTO samples (host_id, ts, report_id, {', '.join(COLUMNS)})"  # noqa: S608
    f" VALUES (?, ?, ?, {', '.join('?' for _ in COLUMNS)})"
)
# The narrower raw row proposed for the lead (docs/history.md): metric values as the rollups
# store them, ts in whole seconds (SQLite keeps an integral REAL in 4 bytes), the first 8 bytes of
# report_id in the row with no unique index (duplicates are found through (host_id, ts)).
_PROPOSED = (
    "CREATE TABLE samples_proposed (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " host_id INTEGER NOT NULL, ts REAL NOT NULL, rid INTEGER NOT NULL, "
    + ", ".join(f"{c} INTEGER" for c in COLUMNS)
    + ")"
)
_PROPOSED_INSERT = (
    f"INSERT INTO samples_proposed (host_id, ts, rid, {', '.join(COLUMNS)})"  # noqa: S608
    f" VALUES (?, ?, ?, {', '.join('?' for _ in COLUMNS)})"
)
_SCALES = [SCALES[c] for c in COLUMNS]


def _rows(hosts: list[int], t0: float, t1: float) -> Iterator[tuple[Any, ...]]:
    """Reports of every host in time order, each host a little out of phase with the others."""
    i = int(t0 // INTERVAL_S)
    while i * INTERVAL_S < t1:
        for h in hosts:
            yield (h, i * INTERVAL_S + h * 0.37 + 0.123456, POOL[(i * 7919 + h * 31) % _POOL])
        i += 1


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], proposed: bool) -> None:
    conn.execute("BEGIN")
    conn.executemany(_INSERT, [(h, ts, uuid.uuid4().bytes, *v) for h, ts, v in rows])
    if proposed:
        conn.executemany(
            _PROPOSED_INSERT,
            [
                (
                    h,
                    float(round(ts)),
                    int.from_bytes(uuid.uuid4().bytes[:8], "big", signed=True),
                    *(scale_value(x, s) for x, s in zip(v, _SCALES, strict=True)),
                )
                for h, ts, v in rows
            ],
        )
    conn.execute("COMMIT")


def _add_hosts(conn: sqlite3.Connection, n: int) -> list[int]:
    ids = []
    for i in range(n):
        cur = conn.execute(
            "INSERT INTO hosts (name, first_seen, last_seen, last_collected, interval_s, latest)"
            " VALUES (?, 0, 0, 0, ?, '{}')",
            (f"host-{i}", INTERVAL_S),
        )
        ids.append(int(cur.lastrowid or 0))
    return ids


# --- bytes ---------------------------------------------------------------------------------------
def steady_state(work: Path, hosts: int = HOSTS, days: float = 3.0) -> dict[str, Any]:
    db = work / "steady.db"
    make_engine(db).dispose()
    rollup_ms = prune_ms = 0.0
    with closing(connect(db, "NORMAL")) as conn:
        conn.execute(_PROPOSED)
        conn.execute("CREATE INDEX ix_proposed_host_ts ON samples_proposed (host_id, ts)")
        ids = _add_hosts(conn, hosts)
        t, end = T_START, T_START + days * DAY
        while t < end:
            nxt = t + 300
            _insert(conn, list(_rows(ids, t, nxt)), proposed=True)
            if int(nxt) % 600 == 0:
                r = rollups.roll_up(conn, pause_s=0, now=nxt)
                rollup_ms = max(rollup_ms, r.max_txn_ms)
            if int(nxt) % 3600 == 0:
                p = rollups.prune(conn, RETENTION, now=nxt, pause_s=0)
                prune_ms = max(prune_ms, p.max_txn_ms)
                with conn:  # the proposed table pruned the same way
                    conn.execute(
                        "DELETE FROM samples_proposed WHERE ts < ?", (nxt - RETENTION.raw_s,)
                    )
            t = nxt
        size, trees = _dbstat(conn)
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema").fetchall())
        count = {
            t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # noqa: S608
            for t in ("samples", "samples_proposed", "rollup_1m", "rollup_1h")
        }
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
    proposed_row = size["samples_proposed"] / count["samples_proposed"]
    per_day = sum(v["bytes_per_host_day"] for v in tiers.values())
    with_proposed = per_day - tiers["raw"]["bytes_per_host_day"] + proposed_row * 8640
    footprint = sum(v["steady_bytes_per_host"] for v in tiers.values())
    return {
        "bytes_per_host_day": per_day,
        "bytes_per_host_day_ok": per_day <= TARGET_BYTES_PER_HOST_DAY,
        "with_proposed_raw_bytes_per_host_day": round(with_proposed),
        "with_proposed_raw_ok": with_proposed <= TARGET_BYTES_PER_HOST_DAY,
        "raw_bytes_per_row": tiers["raw"]["bytes_per_row"],
        "proposed_raw_bytes_per_row": round(proposed_row, 1),
        "minute_bytes_per_row": tiers["1m"]["bytes_per_row"],
        "hour_bytes_per_row": tiers["1h"]["bytes_per_row"],
        "steady_footprint_per_host_bytes": footprint,
        "steady_footprint_per_host_per_retention_day": round(footprint / KEEP_DAYS["1m"]),
        "rollup_max_txn_ms": round(rollup_ms, 1),
        "prune_max_txn_ms": round(prune_ms, 1),
        "detail": {
            "hosts": hosts,
            "simulated_days": days,
            "tiers": tiers,
            "rows": count,
            "raw_bytes_per_row_by_btree": {
                name: round(b / count[owner[name]], 1)
                for name, b in trees.items()
                if owner.get(name) in ("samples", "samples_proposed")
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
    make_engine(db).dispose()
    now = T_START + 30 * DAY + 3600
    with closing(connect(db, "NORMAL")) as conn:
        (host,) = _add_hosts(conn, 1)
        t = now - 30 * DAY - 3600
        while t < now - 60:
            nxt = min(t + 6 * 3600, now - 60)
            _insert(conn, list(_rows([host], t, nxt)), proposed=False)
            t = nxt
        t0 = time.perf_counter()
        rolled = rollups.roll_up(conn, pause_s=0)
        rollup_s = time.perf_counter() - t0
        _insert(conn, list(_rows([host], now - 60, now)), proposed=False)  # not rolled up yet
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
        MetricsReport.model_validate(
            {
                "schema_version": 1,
                "report_id": str(uuid.uuid4()),
                "host": f"agent-{i % 8}",
                "collected_at": stamp,
                "interval_s": 10,
                "cpu": {"percent": 12.5},
                "memory": {"percent": 40.0, "total": 1, "used": 1, "available": 1},
            }
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


def run(hosts: int = HOSTS, rounds: int = ROUNDS) -> dict[str, Any]:
    """Both parts in a temporary directory; figures as a dict (see the module docstring)."""
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="statusdash-history-") as tmp:
        work = Path(tmp)
        out: dict[str, Any] = {
            "storage": steady_state(work, hosts),
            "latency": latency(work, rounds),
        }
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.history_bench", description=__doc__)
    ap.add_argument("--hosts", type=int, default=HOSTS)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    a = ap.parse_args(argv)
    try:
        out = run(a.hosts, a.rounds)
    except BenchError as exc:
        print(f"history benchmark FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
