"""Rollup tiers on real SQLite files: they equal the raw aggregate, late data corrects them, and
history reads the coarsest tier that still fills the buckets, rolled up or not."""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from statusdash.server import history, rollups
from statusdash.server.db import connect, make_engine
from statusdash.server.models import METRIC_COLUMNS, stored_value
from statusdash.server.raw import insert_samples
from statusdash.server.rollup_models import COLUMNS, HOUR, MINUTE, SCALES, Tier
from statusdash.server.storage import Storage
from statusdash.wire import MetricsReport
from tests.conftest import make_report

T0 = 1_789_999_200.0  # a fixed hour boundary (divisible by 3600)
Row = tuple[int, float, dict[str, float | None]]


# --- helpers (also used by test_retention.py) ----------------------------------------------------
def new_db(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "statusdash.db"
    make_engine(path).dispose()
    return path


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(new_db(tmp_path), "NORMAL")
    yield c
    c.close()


def add_host(conn: sqlite3.Connection, name: str) -> int:
    cur = conn.execute(
        "INSERT INTO hosts (name, first_seen, last_seen, last_collected, interval_s, latest)"
        " VALUES (?, 0, 0, 0, 10, '{}')",
        (name,),
    )
    return int(cur.lastrowid or 0)


def values(rng: random.Random, gaps: bool = True) -> dict[str, float | None]:
    """One report's series, with the agent's rounding, some byte rates ending in .5, some gaps."""
    v: dict[str, float | None] = {}
    for c in COLUMNS:
        if SCALES[c] == 100:
            v[c] = round(rng.uniform(0, 100), 2)
        elif c == "procs":
            v[c] = float(rng.randint(50, 400))
        else:
            v[c] = rng.choice([rng.uniform(0, 1e7), rng.randint(0, 10**6) + 0.5])
    if gaps and rng.random() < 0.2:
        v["swap"] = None
    if gaps and rng.random() < 0.1:
        v["dio_r"] = v["dio_w"] = None
    return v


def insert_raw(conn: sqlite3.Connection, rows: list[Row]) -> None:
    """The bulk path: what Storage inserts (its own function), minus the HTTP and pydantic work."""
    conn.execute("BEGIN")
    raw = [(h, ts, uuid.uuid4().bytes, *(v[c] for c in COLUMNS)) for h, ts, v in rows]
    insert_samples(conn, raw)
    conn.execute("COMMIT")


def series(
    host: int, start: float, n: int, step: float, seed: int = 1, gaps: bool = True
) -> list[Row]:
    rng = random.Random(seed)
    return [(host, start + i * step + rng.random(), values(rng, gaps)) for i in range(n)]


def expected_tier(conn: sqlite3.Connection, tier: Tier) -> dict[tuple[int, int], list[Any]]:
    """Each tier row recomputed in Python from every raw row (the oracle).

    Raw values are the scaled integers the tiers aggregate (a REAL would make sums inexact).
    """
    acc: dict[tuple[int, int], list[Any]] = {}
    q = f"SELECT host_id, ts, {', '.join(COLUMNS)} FROM samples"  # noqa: S608
    for host, ts, *vals in conn.execute(q):
        key = (host, int(ts // tier.step) * tier.step)
        row = acc.setdefault(key, [0] + [None, None, None, 0] * len(COLUMNS))
        row[0] += 1
        for i, x in enumerate(vals):
            if x is None:
                continue
            assert type(x) is int
            j = 1 + 4 * i
            row[j] = x if row[j] is None else row[j] + x
            row[j + 1] = x if row[j + 1] is None else min(row[j + 1], x)
            row[j + 2] = x if row[j + 2] is None else max(row[j + 2], x)
            row[j + 3] += 1
    return acc


def actual_tier(conn: sqlite3.Connection, tier: Tier) -> dict[tuple[int, int], list[Any]]:
    cols = ", ".join(f"{c}_sum, {c}_min, {c}_max, coalesce({c}_n, n)" for c in COLUMNS)
    q = f"SELECT host_id, t, n, {cols} FROM {tier.table}"  # noqa: S608
    return {(r[0], r[1]): list(r[2:]) for r in conn.execute(q)}


def dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# --- rollups -------------------------------------------------------------------------------------
def test_rollups_equal_the_raw_aggregate(conn: sqlite3.Connection) -> None:
    a, b = add_host(conn, "a"), add_host(conn, "b")
    insert_raw(conn, series(a, T0 - 7000, 1500, 10.0, seed=1) + series(b, T0, 900, 7.0, seed=2))
    res = rollups.roll_up(conn, batch=400, pause_s=0)
    assert res.rows == 2400 and res.transactions >= 6
    for tier in (MINUTE, HOUR):
        expected = expected_tier(conn, tier)
        assert actual_tier(conn, tier) == expected
        assert sum(r[0] for r in expected.values()) == 2400
    # running again with nothing new changes nothing
    before = actual_tier(conn, MINUTE)
    assert rollups.roll_up(conn, pause_s=0).rows == 0
    assert actual_tier(conn, MINUTE) == before


def test_late_data_corrects_its_rollups(conn: sqlite3.Connection) -> None:
    a = add_host(conn, "a")
    insert_raw(conn, series(a, T0, 720, 10.0, seed=3))  # two hours
    rollups.roll_up(conn, pause_s=0)
    minute_before = actual_tier(conn, MINUTE)
    # a spool delivered later: into buckets that exist (interleaved) and before the first one
    late = series(a, T0 + 5, 360, 10.0, seed=4) + series(a, T0 - 1800, 180, 10.0, seed=5)
    insert_raw(conn, late)
    assert rollups.lag(conn) == 540
    rollups.roll_up(conn, pause_s=0)
    assert rollups.lag(conn) == 0
    for tier in (MINUTE, HOUR):
        assert actual_tier(conn, tier) == expected_tier(conn, tier)
    changed = actual_tier(conn, MINUTE)
    key = (a, int(T0))
    assert changed[key][0] == minute_before[key][0] + 6
    assert len(changed) == len(minute_before) + 30


async def test_rollups_from_the_real_ingest_path(tmp_path: Path) -> None:
    db = new_db(tmp_path)
    storage = Storage(db, "NORMAL")
    storage.open()
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(7)
    reports = [
        msgspec.convert(
            make_report(h, at=now - timedelta(seconds=10 * i), cpu=round(rng.uniform(0, 100), 2)),
            MetricsReport,
        )
        for h in ("web-1", "db-1")
        for i in range(400)
    ]
    try:
        ack = await storage.ingest(reports[:500])
        assert ack.accepted == 500
        c = connect(db, "NORMAL")
        rollups.roll_up(c, pause_s=0)
        ack = await storage.ingest(reports[300:])  # 200 replays, 300 new (late for db-1)
        assert (ack.accepted, ack.duplicates) == (300, 200)
        rollups.roll_up(c, pause_s=0)
        for tier in (MINUTE, HOUR):
            exp = expected_tier(c, tier)
            assert actual_tier(c, tier) == exp
            assert sum(r[0] for r in exp.values()) == 800
        c.close()
    finally:
        await storage.close()


# --- tier choice -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("span_s", "points", "cutoffs", "tier"),
    [
        (3600, 120, {}, "raw"),  # 30 s buckets
        (7200, 120, {}, "1m"),  # 60 s: one minute row a bucket
        (86400, 120, {}, "1m"),
        (86400, 2000, {}, "raw"),  # 43.2 s buckets
        (30 * 86400, 120, {}, "1h"),
        (30 * 86400, 2000, {}, "1m"),
        (7200, 120, {"cutoff_1m": T0 - 3600}, "1h"),  # minute tier pruned past the start
        (600, 120, {"cutoff_raw": T0 - 300}, "1m"),
        (600, 120, {"cutoff_raw": T0 - 900}, "raw"),
    ],
)
def test_choose_tier(span_s: float, points: int, cutoffs: dict[str, float], tier: str) -> None:
    assert history.choose_tier(T0 - span_s, T0, points, cutoffs) == tier


@pytest.fixture
def month(conn: sqlite3.Connection) -> tuple[sqlite3.Connection, int]:
    """31 days of one host at a 60 s interval, rolled up, plus a not-yet-rolled-up last hour."""
    a = add_host(conn, "a")
    insert_raw(conn, series(a, T0 - 31 * 86400, 31 * 1440 - 60, 60.0, seed=9, gaps=False))
    rollups.roll_up(conn, pause_s=0, batch=20_000)
    insert_raw(conn, series(a, T0 - 3600, 60, 60.0, seed=10, gaps=False))
    return conn, a


@pytest.mark.parametrize(("days", "points", "tier"), [(1, 120, "1m"), (30, 120, "1h")])
def test_tier_query_equals_raw_query_on_aligned_buckets(
    month: tuple[sqlite3.Connection, int], days: int, points: int, tier: str
) -> None:
    conn, host = month
    start, end = dt(T0 - days * 86400), dt(T0)
    got = history.query(conn, host, "a", "cpu.percent", start, end, points)
    raw = history.query_raw(conn, host, "a", "cpu.percent", start, end, points)
    assert got.tier == tier and raw.tier == "raw"
    assert len(got.points) == len(raw.points) == points
    for g, r in zip(got.points, raw.points, strict=True):
        assert (g.t, g.count, g.min, g.max) == (r.t, r.count, r.min, r.max)
        assert g.avg == pytest.approx(r.avg, abs=1e-9)
        assert g.avg == r.avg  # the same integer sum and count, the same division
    # the last, not yet rolled up hour is in the answer
    assert rollups.lag(conn) == 60
    assert got.points[-1].count == raw.points[-1].count > 0


def test_both_tail_plans_and_a_full_rollup_agree(month: tuple[sqlite3.Connection, int]) -> None:
    conn, host = month
    start, end = dt(T0 - 3 * 86400 + 17), dt(T0 - 13)
    args = (host, "a", "memory.percent", start, end, 500)
    by_rowid = history.query_tier(conn, MINUTE, *args, by_index=False)
    by_index = history.query_tier(conn, MINUTE, *args, by_index=True)
    rollups.roll_up(conn, pause_s=0)
    rolled = history.query_tier(conn, MINUTE, *args)
    assert by_rowid == by_index == rolled
    assert sum(p.count for p in rolled.points) == 3 * 1440 - 1  # whole minutes inside the range


def test_every_metric_reads_back_at_its_scale(conn: sqlite3.Connection) -> None:
    a = add_host(conn, "a")
    rows = series(a, T0, 60, 60.0, seed=11, gaps=False)
    insert_raw(conn, rows)
    rollups.roll_up(conn, pause_s=0)
    for metric, col in METRIC_COLUMNS.items():
        got = history.query(conn, a, "a", metric, dt(T0), dt(T0 + 3600), 1)
        assert got.tier == "1h"
        vals = [x for _, _, v in rows if (x := v[col]) is not None]
        stored = [stored_value(x, SCALES[col]) or 0 for x in vals]
        (p,) = got.points
        assert p.count == 60
        assert p.min == min(stored) / SCALES[col]
        assert p.max == max(stored) / SCALES[col]
        assert p.avg == sum(stored) / 60 / SCALES[col]  # exact to the stored precision
        assert p.avg == pytest.approx(sum(vals) / 60, abs=0.5 / SCALES[col])
        # values the agent rounds to 0.01 (and process counts) read back as sent
        if SCALES[col] == 100 or col == "procs":
            assert (p.min, p.max) == (min(vals), max(vals))
