"""Chunk retention per tier, and late data for a window whose raw chunk is already pruned."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

from statusdash import catalog
from statusdash.server import rollups
from statusdash.server.tsdb.compact import CompactResult, prune_chunks
from statusdash.server.tsdb.query import host_series
from tests.server.test_tsdb_tiers import END, START, got, want
from tests.server.tsdb_helpers import HOUR, expected, rich_report, run_compact, series_at, store


def tiers(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT tier, count(*) FROM series_chunks GROUP BY tier"))


def test_each_tier_is_pruned_at_its_cutoff_and_late_data_still_adds_up(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    reports = series_at(START, 1080)
    store(db, reports)
    run_compact(db, now=END.timestamp() + 60)
    assert tiers(db) == {"raw": 3, "1m": tiers(db)["1m"], "1h": tiers(db)["1h"]}
    # raw kept 1 hour, 1m and 1h a year: at END + 1 h the three raw windows are wholly past
    keep = rollups.Retention(raw_s=HOUR, minute_s=365 * 86400, hour_s=365 * 86400, replay_s=0)
    now = END.timestamp() + HOUR
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        res = rollups.prune(conn, keep, now=now, pause_s=0)
        pruned = prune_chunks(conn, res.cutoffs)
    assert pruned.deleted == {"raw": 3, "1m": 0, "1h": 0}
    assert "raw" not in tiers(db)
    # a late report for the first hour: its raw chunk is gone, the tiers take it by adding
    late = rich_report(START + timedelta(minutes=20, seconds=3), 5)
    late["cpu"]["per_core"] = [100.0, 0.0, 50.0, 7.25]
    store(db, [late])
    run_compact(db, now=now)
    assert "raw" not in tiers(db)  # nothing re-created for a pruned window
    exp = expected([*reports, late])
    scales = {m.name: m.scale for m in catalog.LABELLED}
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        refs = host_series(conn, 1)
        for points, step in ((180, 60), (3, 3600)):
            answer = got(refs, conn, points)
            for key, values in exp.items():
                w = want(values, START.timestamp(), END.timestamp(), points, step, scales[key[0]])
                assert answer[key] == w, (key, points)
    # and the 1m tier goes too once past its own cutoff
    short = rollups.Retention(raw_s=HOUR, minute_s=HOUR, hour_s=365 * 86400, replay_s=0)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        res = rollups.prune(conn, short, now=END.timestamp() + 7 * HOUR, pause_s=0)
        prune_chunks(conn, res.cutoffs)
    assert set(tiers(db)) == {"1h"}


def test_the_server_jobs_compact_and_the_settings_reach_them(tmp_path: Path) -> None:
    from statusdash.server.jobs import build_jobs
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, tsdb_compact_interval_s=17, tsdb_compact_grace_s=0)
    store(settings.db_path, series_at(START, 400), max_series_per_host=50)
    jobs = build_jobs(settings)
    assert jobs.scheduler.jobs["compact"].interval_s == 17
    res = jobs.scheduler.run_now("compact")
    assert isinstance(res, CompactResult)
    jobs.conn.close()
    assert res.windows == 2 and res.rows == 400  # the two closed hours (400 reports = 1 h 7 min)
    with closing(sqlite3.connect(settings.db_path)) as conn:
        assert conn.execute("SELECT count(*) FROM series_head").fetchone()[0] == 0


def test_the_limits_are_settings_with_defaults() -> None:
    from statusdash.settings import Settings

    fields = Settings.model_fields
    assert fields["max_series_per_host"].default == 2000
    assert fields["tsdb_chunk_span_s"].default == 3600
    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for name in ("MAX_SERIES_PER_HOST", "TSDB_CHUNK_SPAN_S", "TSDB_COMPACT_INTERVAL_S"):
        assert name in text
