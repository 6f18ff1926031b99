"""The raw row format on a real SQLite file: a WITHOUT ROWID table keyed by (host, collected_at,
report_id) with integer values, exact read-back, duplicates found by one key lookup (in a group,
in the database, late, after a reopen, in a crowded second), arrival ids never reused, and bytes
per row within the storage budget (docs/history.md)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from statusdash.server import rollups
from statusdash.server.db import connect
from statusdash.server.models import MAX_SCALED, METRIC_COLUMNS, stored_sql, stored_value
from statusdash.server.rollup_models import COLUMNS, MINUTE, SCALES
from statusdash.server.storage import Storage
from statusdash.settings import Settings
from statusdash.wire import MetricsReport
from tests.conftest import make_report
from tests.server.test_history_tiers import (
    actual_tier,
    add_host,
    expected_tier,
    insert_raw,
    new_db,
    series,
)

# The budget is (1 MB - 250 KB the rollup tiers cost a host-day) / 8,640 raw rows = 86.8 bytes in
# steady state (bench/history_bench.py measures that: ~85). A fresh file packs pages a little
# differently (85-87 here), so this guard allows 90: it catches an index or a wide column added.
RAW_ROW_LIMIT = 90.0


def report(host: str = "web-1", **kw: Any) -> MetricsReport:
    return msgspec.convert(make_report(host, **kw), MetricsReport)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    s = Storage(new_db(tmp_path), "NORMAL")
    s.open()
    yield s
    await s.close()


def read(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, args).fetchall()


# --- encoding ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "scale", "stored"),
    [
        (None, 100, None),
        (0.0, 100, 0),
        (12.34, 100, 1234),
        (0.29, 100, 29),  # 28.999999999999996 before rounding
        (99.99, 100, 9999),
        (1000.5, 1, 1001),  # half away from zero, as SQLite's round()
        (1000.49, 1, 1000),
        (-2.5, 1, -3),
        (1e300, 1, MAX_SCALED),  # a broken agent's value cannot overflow a rollup sum
        (-1e300, 100, -MAX_SCALED),
    ],
)
def test_stored_value(value: float | None, scale: int, stored: int | None) -> None:
    assert stored_value(value, scale) == stored


def test_sql_stores_what_stored_value_says(tmp_path: Path) -> None:
    """Ingest scales in SQL (off the GIL); tests and docs use the Python twin: they agree."""
    rng = random.Random(3)
    edge = [0.0, 0.29, 0.5, 1.5, 2.5, 12.345, 99.99, 1000.5, 2.0**47, 2.0**47 - 0.5, 1e300]
    wide = [rng.uniform(0, 10.0 ** rng.randint(0, 16)) for _ in range(3000)]
    two = [round(rng.uniform(0, 100), 2) for _ in range(3000)]
    values = [*edge, *(-x for x in edge), *wide, *two]
    with closing(sqlite3.connect(":memory:")) as conn:
        for scale in (1, 100):
            sql = f"SELECT {stored_sql('?', scale)}"
            got = [conn.execute(sql, (v,)).fetchone()[0] for v in [*values, None]]
            assert got == [stored_value(v, scale) for v in [*values, None]]


def test_every_two_decimal_percentage_is_stored_losslessly() -> None:
    for i in range(10001):
        v = round(i / 100, 2)
        x = stored_value(v, 100)
        assert x == i and x / 100 == v


# --- the table -----------------------------------------------------------------------------------
def test_samples_is_keyed_by_host_time_and_report_with_no_other_index(tmp_path: Path) -> None:
    db = new_db(tmp_path)
    (sql,) = read(db, "SELECT sql FROM sqlite_schema WHERE name = 'samples'")[0]
    assert "WITHOUT ROWID" in sql.upper()
    info = read(db, "PRAGMA table_info(samples)")
    assert {name: typ for _, name, typ, *_ in info} == {
        "host_id": "INTEGER",
        "ts": "FLOAT",
        "report_id": "BLOB",
        "id": "INTEGER",
    } | {c: "INTEGER" for c in COLUMNS}
    key = sorted((pk, name) for _, name, _, _, _, pk in info if pk)
    assert [name for _, name in key] == ["host_id", "ts", "report_id"]
    # only the primary key's own index: no unique index on a random key, no (host_id, ts) index
    assert [r[3] for r in read(db, "PRAGMA index_list(samples)")] == ["pk"]
    (pending,) = read(db, "SELECT sql FROM sqlite_schema WHERE name = 'samples_pending'")[0]
    assert "AUTOINCREMENT" in pending.upper()


async def test_a_duplicate_check_is_one_key_search(storage: Storage) -> None:
    """However many samples a host has in one second, a lookup never scans them."""
    now = datetime.now(UTC)
    await storage.ingest([report(at=now)])
    seen: list[str] = []
    assert storage._conn is not None
    storage._conn.set_trace_callback(seen.append)  # the statements, values filled in
    try:  # late reports (not newer than the newest stored) are the ones looked up
        late = [report(at=now - timedelta(seconds=5)), report(at=now)]
        assert (await storage.ingest(late)).accepted == 2
    finally:
        storage._conn.set_trace_callback(None)
    (lookup,) = [q for q in seen if "CROSS JOIN samples" in q]
    plan = read(storage.db_path, "EXPLAIN QUERY PLAN " + lookup)
    assert [r[-1] for r in plan if "SEARCH" in r[-1] or "SCAN s" in r[-1]] == [
        "SEARCH s USING PRIMARY KEY (host_id=? AND ts=? AND report_id=?)"
    ]


async def test_reports_newer_than_the_newest_stored_need_no_lookup(storage: Storage) -> None:
    now = datetime.now(UTC)
    first = report(at=now - timedelta(seconds=20))
    await storage.ingest([first])
    seen: list[str] = []
    assert storage._conn is not None
    storage._conn.set_trace_callback(seen.append)
    try:
        fresh = [report(at=now - timedelta(seconds=10)), report(at=now)]
        assert (await storage.ingest(fresh)).accepted == 2
        assert not [q for q in seen if "CROSS JOIN samples" in q]
        again = await storage.ingest([first, fresh[1]])  # replays are still caught
        assert (again.accepted, again.duplicates) == (0, 2)
    finally:
        storage._conn.set_trace_callback(None)


async def test_the_host_row_is_written_at_most_every_persist_s(storage: Storage) -> None:
    """Every report is committed; the host's JSON snapshot only lags, and is flushed at close."""
    now = datetime.now(UTC)
    for i in range(5):
        await storage.ingest([report(at=now - timedelta(seconds=5 - i), cpu=float(i))])
    (latest,) = read(storage.db_path, "SELECT latest FROM hosts")[0]
    assert msgspec.json.decode(latest, type=MetricsReport).cpu.percent == 0.0  # type: ignore[union-attr]
    assert read(storage.db_path, "SELECT count(*) FROM samples")[0][0] == 5
    await storage.close()
    (latest,) = read(storage.db_path, "SELECT latest FROM hosts")[0]
    assert msgspec.json.decode(latest, type=MetricsReport).cpu.percent == 4.0  # type: ignore[union-attr]
    reopened = Storage(storage.db_path, "NORMAL")
    reopened.open()
    try:
        state = reopened.cache.get("web-1")
        assert state is not None and state.latest.cpu is not None
        assert state.latest.cpu.percent == 4.0
    finally:
        await reopened.close()


def test_arrival_ids_are_never_reused(tmp_path: Path) -> None:
    with closing(connect(new_db(tmp_path), "NORMAL")) as conn:
        a = add_host(conn, "a")
        insert_raw(conn, series(a, 1_790_000_000, 10, 10.0))
        rollups.roll_up(conn, pause_s=0)
        assert conn.execute("SELECT count(*) FROM samples_pending").fetchone()[0] == 0
        conn.execute("DELETE FROM samples")  # everything, the newest row too
        insert_raw(conn, series(a, 1_790_000_100, 1, 10.0))
        assert conn.execute("SELECT id FROM samples").fetchall() == [(11,)]
        assert conn.execute("SELECT id FROM samples_pending").fetchall() == [(11,)]


def test_raw_rows_stay_within_the_storage_budget(tmp_path: Path) -> None:
    """Bytes per raw row (the keyed table, page slack included) of agent-like data."""
    with closing(connect(new_db(tmp_path), "NORMAL")) as conn:
        hosts = [add_host(conn, f"h{i}") for i in range(8)]
        t0 = 1_790_000_000
        rows = [r for h in hosts for r in series(h, t0 + h, 2500, 10.0, seed=h)]
        rows.sort(key=lambda r: r[1])  # hosts interleaved in time, as they report
        for i in range(0, len(rows), 500):
            insert_raw(conn, rows[i : i + 500])
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema").fetchall())
        size = sum(
            pages
            for name, pages in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
            if owner.get(name) == "samples"
        )
    per_row = size / len(rows)
    assert 60 < per_row <= RAW_ROW_LIMIT, per_row


# --- through Storage -----------------------------------------------------------------------------
async def test_a_report_reads_back_exactly_as_stored(storage: Storage) -> None:
    at = datetime.now(UTC).replace(microsecond=654_321)
    rep = report(at=at, cpu=37.25, mem=41.07, disk=99.99)
    rep.net.rx_bytes_s = 12_345.5  # type: ignore[union-attr]
    rep.disk_io.write_bytes_s = 1e300  # type: ignore[union-attr]
    rep.swap = None
    assert (await storage.ingest([rep])).accepted == 1
    cols = ", ".join(COLUMNS)
    ((host_id, ts, rid, *vals),) = read(
        storage.db_path,
        f"SELECT host_id, ts, report_id, {cols} FROM samples",  # noqa: S608
    )
    assert host_id == storage.host_id("web-1")
    assert ts == at.timestamp() and rid == rep.report_id.bytes  # exactly as sent
    got = dict(zip(COLUMNS, vals, strict=True))
    assert all(type(v) is int for c, v in got.items() if c != "swap")
    assert got["swap"] is None
    assert (got["cpu"], got["mem"], got["disk"]) == (3725, 4107, 9999)
    assert (got["load1"], got["iowait"], got["procs"]) == (42, 50, 120)
    assert (got["net_rx"], got["net_tx"], got["dio_w"]) == (12_346, 3400, MAX_SCALED)
    pending = read(storage.db_path, f"SELECT host_id, ts, {cols} FROM samples_pending")  # noqa: S608
    assert pending == [(host_id, ts, *vals)]
    (last,) = read(storage.db_path, "SELECT last_collected FROM hosts")[0]
    assert last == ts  # the host row agrees with its newest sample
    with closing(connect(storage.db_path, "NORMAL")) as conn:
        rollups.roll_up(conn, pause_s=0)  # a clamped value sums without overflow
        assert conn.execute("SELECT dio_w_sum FROM rollup_1h").fetchone()[0] == MAX_SCALED


async def test_duplicates_in_a_group_in_the_database_and_after_a_reopen(
    storage: Storage, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    reps = [report(at=now - timedelta(seconds=10 * (700 - i))) for i in range(700)]
    fresh = [report(at=now) for _ in range(5)]
    acks = await _together(storage, [reps[:400], reps[200:], reps[:1]])
    assert sum(a.accepted for a in acks) == 700
    assert sum(a.duplicates for a in acks) == 201
    ack = await storage.ingest([*reps, *fresh])  # 700 found in the database: 3 lookups
    assert (ack.accepted, ack.duplicates) == (5, 700)
    crowd = [report(at=now) for _ in range(2000)]  # one second, the same collected_at
    crowd[1].report_id = uuid.UUID(bytes=bytes(8) + crowd[0].report_id.bytes[8:])
    crowd[2].report_id = uuid.UUID(bytes=crowd[0].report_id.bytes[:8] + bytes(8))
    for i in range(0, 2000, 500):
        assert (await storage.ingest(crowd[i : i + 500])).accepted == 500
    ack = await storage.ingest([*crowd[::7], fresh[1], report(at=now)])
    assert (ack.accepted, ack.duplicates) == (1, 287)
    await storage.close()
    again = Storage(storage.db_path, "NORMAL")
    again.open()
    try:
        ack = await again.ingest([fresh[0], reps[0], report(at=now), reps[-1], crowd[1]])
        assert (ack.accepted, ack.duplicates) == (1, 4)
    finally:
        await again.close()
    assert read(storage.db_path, "SELECT count(*) FROM samples") == [(2707,)]


async def _together(storage: Storage, batches: list[list[MetricsReport]]) -> list[Any]:
    return list(await asyncio.gather(*(storage.ingest(b) for b in batches)))


async def test_a_late_replay_inside_the_replay_window_is_counted_once(storage: Storage) -> None:
    """A spool delivered three days late, rolled up and past raw retention, then replayed: the raw
    rows are kept through the replay window, so the replay is a duplicate and the tiers see it
    once."""
    retention = rollups.Retention.from_settings(Settings(_env_file=None))  # the defaults
    old = datetime.now(UTC) - timedelta(days=3)
    spool = [report(at=old + timedelta(seconds=10 * i), cpu=float(i % 100)) for i in range(360)]
    assert (await storage.ingest(spool)).accepted == 360
    with closing(connect(storage.db_path, "NORMAL")) as conn:
        rollups.roll_up(conn, pause_s=0)
        pruned = rollups.prune(conn, retention, pause_s=0)
        assert pruned.deleted["raw"] == 0  # past retention, but arrived a moment ago
        ack = await storage.ingest(spool)
        assert (ack.accepted, ack.duplicates) == (0, 360)
        rollups.roll_up(conn, pause_s=0)
        assert sum(r[0] for r in conn.execute("SELECT n FROM rollup_1m")) == 360
        assert actual_tier(conn, MINUTE) == expected_tier(conn, MINUTE)
        # once the window has passed the raw rows go; the tiers keep the data
        later = datetime.now(UTC).timestamp() + 7 * 3600
        rollups.roll_up(conn, pause_s=0, now=later - 6.5 * 3600)
        assert rollups.prune(conn, retention, now=later, pause_s=0).deleted["raw"] == 360
        assert sum(r[0] for r in conn.execute("SELECT n FROM rollup_1m")) == 360


def test_every_metric_has_a_scale() -> None:
    assert set(SCALES) == set(METRIC_COLUMNS.values()) == set(COLUMNS)


async def test_the_cache_holds_the_wire_struct_live_and_after_a_restart(tmp_path: Path) -> None:
    """``worst_disk`` works on every path: as ingested, and as rebuilt from the host row."""
    db = new_db(tmp_path)
    disks = [
        {"mount": "/", "total": 100, "used": 50, "percent": 50.0},
        {"mount": "/data", "total": 100, "used": 93, "percent": 93.0},
    ]
    s = Storage(db, "NORMAL")
    s.open()
    try:
        await s.ingest([report(disks=disks)])
        live = s.cache.get("web-1")
        assert live is not None and isinstance(live.latest, MetricsReport)
        assert live.latest.worst_disk is not None and live.latest.worst_disk.mount == "/data"
    finally:
        await s.close()
    again = Storage(db, "NORMAL")
    again.open()
    try:
        state = again.cache.get("web-1")
        assert state is not None and isinstance(state.latest, MetricsReport)
        assert state.latest == live.latest
        assert state.latest.worst_disk is not None and state.latest.worst_disk.percent == 93.0
    finally:
        await again.close()
