"""Labelled series through the head, the raw chunks and the 1m/1h tiers, on a real SQLite file.

Every answer is checked against aggregates computed here from the reports themselves.
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from statusdash import catalog
from statusdash.server.storage import Storage
from statusdash.server.tsdb.query import SeriesRef, host_series, read_series
from tests.server.tsdb_helpers import HOUR, expected, rich_report, run_compact, series_at, store

START = datetime.fromtimestamp((datetime.now(UTC).timestamp() // HOUR - 6) * HOUR, UTC)
END = START + timedelta(hours=3)


def want(
    values: list[tuple[float, int]], t0: float, t1: float, points: int, step: int, scale: int
) -> list[tuple[datetime, float, float, float, int]]:
    """Buckets as the contract has them: a value counts in the bucket its tier step starts in."""
    bucket = (t1 - t0) / points
    lo, hi = (math.ceil(t0 / step) * step, math.ceil(t1 / step) * step) if step else (t0, t1)
    cells: dict[int, list[int]] = {}
    for ts, v in values:
        if not lo <= ts < hi:
            continue
        b = int((((ts // step) * step if step else ts) - t0) / bucket)
        c = cells.setdefault(b, [0, v, v, 0])
        c[0] += v
        c[1], c[2], c[3] = min(c[1], v), max(c[2], v), c[3] + 1
    return [
        (datetime.fromtimestamp(t0 + b * bucket, UTC), s / n / scale, mn / scale, mx / scale, n)
        for b, (s, mn, mx, n) in sorted(cells.items())
        if 0 <= b < points
    ]


def got(refs: list[SeriesRef], conn: sqlite3.Connection, points: int) -> dict[Any, list[Any]]:
    res = read_series(conn, refs, START, END, points)
    return {
        (r.metric, tuple(r.labels.values())): [
            (p.t, p.avg, p.min, p.max, p.count) for p in res[r.id]
        ]
        for r in refs
    }


def check_all(db: Path, reports: list[dict[str, Any]]) -> None:
    exp = expected(reports)
    scales = {m.name: m.scale for m in catalog.LABELLED}
    t0, t1 = START.timestamp(), END.timestamp()
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        host_id = conn.execute("SELECT id FROM hosts").fetchone()[0]
        refs = host_series(conn, host_id)
        assert {(r.metric, tuple(r.labels.values())) for r in refs} == set(exp)
        # 1080 points: 10 s buckets (raw); 180: 60 s (1m tier); 3: 1 hour (1h tier)
        for points, step in ((1080, 0), (180, 60), (3, 3600)):
            answer = got(refs, conn, points)
            for key, values in exp.items():
                assert answer[key] == want(values, t0, t1, points, step, scales[key[0]]), (
                    key,
                    points,
                )


def test_series_round_trip_through_head_chunks_and_tiers(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    reports = series_at(START, 1080)
    ack, _ = store(db, reports)
    assert ack.accepted == 1080
    check_all(db, reports)  # all in the head
    res = run_compact(db, now=END.timestamp() + 60)
    assert res.windows == 3 and res.rows == 1080
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM series_head").fetchone()[0] == 0
        tiers = dict(conn.execute("SELECT tier, count(*) FROM series_chunks GROUP BY tier"))
    assert tiers["raw"] == 3 and tiers["1m"] >= 1 and tiers["1h"] >= 1
    check_all(db, reports)  # all in chunks
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        refs = host_series(conn, 1, "disk.mount.percent")
    assert [dict(r.labels) for r in refs] == [{"mount": "/"}, {"mount": "/data"}]
    assert refs[0].unit == "%" and refs[0].first == START
    # lo is not traffic: no series for it
    assert not [k for k in expected(reports) if k[1] == ("lo",)]


def test_late_report_corrects_every_tier_exactly(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    reports = series_at(START, 1080)
    store(db, reports)
    run_compact(db, now=END.timestamp() + 60)
    late = rich_report(START + timedelta(minutes=30, seconds=5), 7)
    late["cpu"]["per_core"] = [100.0, 0.0, 99.99, 0.01]
    late["disks"][1]["percent"] = 99.5
    ack, _ = store(db, [late])
    assert ack.accepted == 1
    check_all(db, [*reports, late])  # chunk + head
    res = run_compact(db, now=END.timestamp() + 120)
    assert res.late == 1 and res.rows == 1
    check_all(db, [*reports, late])  # merged into the chunk, buckets recomputed


def test_replays_are_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    reports = series_at(START, 400)
    store(db, reports)
    ack, _ = store(db, reports[100:300])
    assert (ack.accepted, ack.duplicates) == (0, 200)
    run_compact(db, now=END.timestamp() + 60)
    ack, _ = store(db, reports[:50])
    assert ack.duplicates == 50
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM series_head").fetchone()[0] == 0
        assert (
            sum(n for (n,) in conn.execute("SELECT rows FROM series_chunks WHERE tier='raw'"))
            == 400
        )


def test_a_series_that_stops_has_no_points_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    first = series_at(START, 360)  # the first hour with /data
    gap = [
        rich_report(START + timedelta(seconds=10 * i), i, data_mount=False) for i in range(360, 720)
    ]
    back = [rich_report(START + timedelta(seconds=10 * i), i) for i in range(720, 1080)]
    store(db, first + gap)
    run_compact(db, now=START.timestamp() + 2 * HOUR + 60)
    store(db, back)
    check_all(db, first + gap + back)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        (ref,) = [
            r for r in host_series(conn, 1, "disk.mount.percent") if r.labels["mount"] == "/data"
        ]
        pts = read_series(conn, [ref], START, END, 3)[ref.id]
    assert [p.t for p in pts] == [START, START + timedelta(hours=2)]  # nothing in the gap
    assert [p.count for p in pts] == [360, 360]


def test_cardinality_cap_drops_series_not_the_report(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    reports = series_at(START, 20)
    ack, storage = store(db, reports, max_series_per_host=10)
    assert ack.accepted == 20
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM series").fetchone()[0] == 10
        assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 20
        assert conn.execute("SELECT count(*) FROM series_head").fetchone()[0] == 20
    per_report = len({k for k in expected(reports[:1])})
    assert storage.series.dropped[1] == storage.series.dropped_total >= 20 * (per_report - 10)
    assert storage.series.count(1) == 10
    # a restart reloads the registry: still capped, the known series still written
    ack, storage = store(db, series_at(START + timedelta(hours=1), 5), max_series_per_host=10)
    assert ack.accepted == 5 and storage.series.count(1) == 10


def test_purge_removes_series_head_and_chunks(tmp_path: Path) -> None:
    import asyncio

    db = tmp_path / "s.db"
    store(db, series_at(START, 400))
    run_compact(db, now=END.timestamp() + 60)
    store(db, series_at(START + timedelta(hours=5), 3))

    async def purge() -> bool:
        s = Storage(db, "NORMAL")
        s.open()
        try:
            return await s.remove_host("web-1", purge=True)
        finally:
            await s.close()

    assert asyncio.run(purge())
    with closing(sqlite3.connect(db)) as conn:
        for table in ("series", "series_head", "series_chunks"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table  # noqa: S608
