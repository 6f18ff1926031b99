"""Upgrade benchmark: how long start-up's schema upgrade takes on a 30-day, 50-host database.

The database: the version-1 fixture (``tests/fixtures/db_v1.sqlite``, made by main before schema
versioning) filled in SQL with what ``HOSTS`` hosts reporting every 10 s leave after ``DAYS``
days in steady state: 48 h of raw rows, ``DAYS`` of 1-minute and of 1-hour rows (retention's
defaults), every column filled. Each round copies it and times, on the copy:

- ``upgrade_v1_ms``: ``db.ensure_schema``, what ``create_app`` runs: version 1 to the current;
- ``new_metric_ms``: the start-up after a new series in the catalogue: one nullable column more
  on ``samples`` and ``samples_pending`` and four on each rollup table;
- ``backup_s``: what an offline upgrade would cost first, an automatic ``backup_database``.

The copy is flushed to disk before the clock starts (an upgrade's commit would otherwise pay
for writing the fresh copy out). The median and range over ``ROUNDS`` rounds, and the file size,
to extrapolate (docs/upgrades.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData
from sqlmodel import SQLModel

from statusdash.server import backup, migrations
from statusdash.server.db import connect, ensure_schema
from statusdash.server.rollup_models import COLUMNS, HOUR, MINUTE

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "db_v1.sqlite"
HOSTS = 50
DAYS = 30
RAW_HOURS = 48
INTERVAL_S = 10
ROUNDS = 3
TARGET_UPGRADE_MS = 1000.0  # start-up must not wait on the upgrade, whatever the size
T_END = 1_790_000_000 // 3600 * 3600


def _fill(conn: sqlite3.Connection, hosts: int, days: int) -> dict[str, int]:
    """Steady-state rows for ``hosts`` new hosts, generated in SQL (random values, all set)."""
    first = int(conn.execute("SELECT coalesce(max(id), 0) FROM hosts").fetchone()[0]) + 1
    ids = list(range(first, first + hosts))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO hosts (id, name, first_seen, last_seen, last_collected, interval_s, latest)"
        " VALUES (?, ?, 0, 0, 0, 10, '{}')",
        [(i, f"bench-{i}") for i in ids],
    )
    raw_n = RAW_HOURS * 3600 // INTERVAL_S
    metrics = ", ".join(COLUMNS)
    values = ", ".join("abs(random() % 10000)" for _ in COLUMNS)
    seq = "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ? - 1)"
    for host in ids:
        conn.execute(
            f"{seq} INSERT INTO samples (host_id, ts, report_id, id, {metrics})"  # noqa: S608
            f" SELECT ?, ? - i * {INTERVAL_S}, randomblob(16), ? * 1000000 + i, {values} FROM s",
            (raw_n, host, T_END, host),
        )
        for tier, n in ((MINUTE, days * 1440), (HOUR, days * 24)):
            cols = ", ".join(f"{c}_sum, {c}_min, {c}_max" for c in COLUMNS)
            vals = ", ".join(f"{v} * 6, {v}, {v}" for v in ["abs(random() % 10000)"] * len(COLUMNS))
            conn.execute(
                f"{seq} INSERT INTO {tier.table} (host_id, t, n, {cols})"  # noqa: S608
                f" SELECT ?, ? - i * {tier.step}, {tier.step // INTERVAL_S}, {vals} FROM s",
                (n, host, T_END),
            )
    conn.execute("COMMIT")
    tables = {"raw": "samples", "1m": MINUTE.table, "1h": HOUR.table}
    q = "SELECT count(*) FROM {}"
    return {k: int(conn.execute(q.format(t)).fetchone()[0]) for k, t in tables.items()}


def build(path: Path, hosts: int, days: int) -> dict[str, int]:
    """The version-1 database of ``hosts`` hosts after ``days`` days, at ``path``."""
    shutil.copyfile(FIXTURE, path)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        rows = _fill(conn, hosts, days)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert int(conn.execute("PRAGMA user_version").fetchone()[0]) == 0
    return rows


def new_metric() -> MetaData:
    """The declared schema with one series more, as the catalogue would declare it."""
    meta = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(meta)
    for name in ("samples", "samples_pending"):
        meta.tables[name].append_column(Column("gpu", Integer))
    for tier in (MINUTE, HOUR):
        for part in ("sum", "min", "max", "n"):
            meta.tables[tier.table].append_column(Column(f"gpu_{part}", Integer))
    return meta


def _copy(src: Path, dest: Path) -> None:
    """Copy and flush: else the timed upgrade's first fsync would write the whole copy out."""
    shutil.copyfile(src, dest)
    with dest.open("rb+") as f:
        os.fsync(f.fileno())


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _stats(xs: list[float], scale: float, digits: int) -> dict[str, float]:
    return {
        "median": round(statistics.median(xs) * scale, digits),
        "min": round(min(xs) * scale, digits),
        "max": round(max(xs) * scale, digits),
    }


def run(hosts: int = HOSTS, days: int = DAYS, rounds: int = ROUNDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="upgrade-bench-") as tmp:
        work = Path(tmp)
        v1 = work / "v1.db"
        t0 = time.perf_counter()
        rows = build(v1, hosts, days)
        build_s = time.perf_counter() - t0
        upgrade: list[float] = []
        added: list[float] = []
        backups: list[float] = []
        meta = new_metric()
        for i in range(rounds):
            db = work / f"round-{i}.db"
            _copy(v1, db)
            upgrade.append(_timed(partial(ensure_schema, db)))

            def add(db: Path = db) -> None:
                with closing(connect(db)) as conn:
                    assert len(migrations.upgrade(conn, meta).added) == 10

            added.append(_timed(add))
            dest = work / f"backup-{i}.db"
            backups.append(_timed(partial(backup.backup_database, db, dest)))
            dest.unlink()
            db.unlink()
        size = v1.stat().st_size
    return {
        "hosts": hosts,
        "days": days,
        "rows": rows,
        "db_mib": round(size / 2**20, 1),
        "build_s": round(build_s, 1),
        "upgrade_v1_ms": _stats(upgrade, 1000, 2),
        "new_metric_ms": _stats(added, 1000, 2),
        "backup_s": _stats(backups, 1, 2),
        "rounds": rounds,
        "upgrade_ok": statistics.median(upgrade) * 1000 < TARGET_UPGRADE_MS,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=HOSTS)
    ap.add_argument("--days", type=int, default=DAYS)
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    args = ap.parse_args()
    json.dump(run(args.hosts, args.days, args.rounds), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
