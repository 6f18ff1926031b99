"""Retention on a real SQLite file: each tier loses exactly what is past its retention, and never a
row the tiers lack or a row that could still be replayed; the scheduler runs and reports jobs."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from statusdash.server import history, rollups
from statusdash.server.jobs import Scheduler, UnknownJobError
from statusdash.server.rollup_models import COLUMNS, HOUR, MINUTE, cutoff_key
from tests.server.test_history_tiers import T0, add_host, conn, dt, insert_raw, series

__all__ = ["conn"]  # the fixture, re-exported for pytest

RET = rollups.Retention(raw_s=2 * 3600, minute_s=86400, hour_s=3 * 86400, replay_s=0)


def count(conn: sqlite3.Connection, sql: str, *args: float) -> int:
    return int(conn.execute(sql, args).fetchone()[0])


def test_prune_removes_exactly_what_is_past_each_tiers_retention(
    conn: sqlite3.Connection,
) -> None:
    a, b = add_host(conn, "a"), add_host(conn, "b")
    # four days every 30 s for a; b only old data; rows sitting right on the raw cutoff
    now = T0 + 1234.5  # cutoffs fall inside buckets, not on their edges
    raw_cut = now - RET.raw_s
    rows = series(a, now - 4 * 86400, 4 * 2880, 30.0, seed=1) + series(b, now - 3 * 86400, 100, 30)
    blank = dict.fromkeys(COLUMNS)
    rows += [(a, raw_cut, blank), (a, raw_cut - 0.001, blank), (b, raw_cut + 0.001, blank)]
    insert_raw(conn, rows)
    rollups.roll_up(conn, pause_s=0, batch=50_000)
    raw_total = count(conn, "SELECT count(*) FROM samples")
    raw_past = count(conn, "SELECT count(*) FROM samples WHERE ts < ?", raw_cut)
    tiers = {}
    for tier, keep in ((MINUTE, RET.minute_s), (HOUR, RET.hour_s)):
        last = now - keep - tier.step  # a bucket is past when it ends at or before the cutoff
        q = f"SELECT count(*) FROM {tier.table}"  # noqa: S608
        tiers[tier.name] = (count(conn, q), count(conn, q + " WHERE t <= ?", last), last)
        assert 0 < tiers[tier.name][1] < tiers[tier.name][0]

    res = rollups.prune(conn, RET, now=now, batch=500, pause_s=0)

    assert res.deleted["raw"] == raw_past > 0
    assert count(conn, "SELECT count(*) FROM samples") == raw_total - raw_past
    assert count(conn, "SELECT count(*) FROM samples WHERE ts < ?", raw_cut) == 0
    assert count(conn, "SELECT count(*) FROM samples WHERE ts = ?", raw_cut) == 1
    for tier in (MINUTE, HOUR):
        total, past, last = tiers[tier.name]
        q = f"SELECT count(*) FROM {tier.table}"  # noqa: S608
        assert res.deleted[tier.name] == past
        assert count(conn, q) == total - past
        assert count(conn, q + " WHERE t <= ?", last) == 0
        # the bucket holding the cutoff stays
        holding = (last // tier.step + 1) * tier.step
        assert count(conn, q + " WHERE host_id = ? AND t = ?", a, holding) == 1
    st = rollups.state(conn)
    assert st[cutoff_key("raw")] == raw_cut and st[cutoff_key("1h")] == now - RET.hour_s
    # pruning again finds nothing
    again = rollups.prune(conn, RET, now=now, pause_s=0)
    assert again.deleted == {"raw": 0, "1m": 0, "1h": 0}


def test_prune_keeps_rows_the_tiers_lack_and_ids_keep_growing(conn: sqlite3.Connection) -> None:
    a = add_host(conn, "a")
    insert_raw(conn, series(a, T0 - 86400, 100, 30.0))
    # nothing rolled up yet: nothing raw may go, though all of it is past retention
    assert rollups.prune(conn, RET, now=T0, pause_s=0).deleted["raw"] == 0
    rollups.roll_up(conn, pause_s=0)
    insert_raw(conn, series(a, T0 - 86400, 50, 30.0, seed=2))  # late, not rolled up
    assert rollups.prune(conn, RET, now=T0, pause_s=0).deleted["raw"] == 100
    rollups.roll_up(conn, pause_s=0)
    # all rolled up: everything goes, and the arrival ids (the rollup watermark) never go back
    assert rollups.prune(conn, RET, now=T0, pause_s=0).deleted["raw"] == 50
    assert count(conn, "SELECT count(*) FROM samples") == 0
    assert sum(r[0] for r in conn.execute("SELECT n FROM rollup_1m")) == 150
    insert_raw(conn, series(a, T0 - 60, 1, 30.0, seed=3))
    assert count(conn, "SELECT min(id) FROM samples") == 151 == rollups.last_id(conn)
    assert rollups.roll_up(conn, pause_s=0).rows == 1
    assert sum(r[0] for r in conn.execute("SELECT n FROM rollup_1m")) == 151


def test_raw_rows_stay_through_the_replay_window(conn: sqlite3.Connection) -> None:
    ret = rollups.Retention(raw_s=3600, minute_s=86400, hour_s=86400 * 3, replay_s=6 * 3600)
    a = add_host(conn, "a")
    insert_raw(conn, series(a, T0 - 86400, 100, 30.0))
    rollups.roll_up(conn, pause_s=0, now=T0)  # these arrived by T0
    insert_raw(conn, series(a, T0 - 86400, 100, 30.0, seed=2))
    rollups.roll_up(conn, pause_s=0, now=T0 + 3600)  # these by T0 + 1 h
    assert rollups.prune(conn, ret, now=T0 + 5 * 3600, pause_s=0).deleted["raw"] == 0
    assert rollups.prune(conn, ret, now=T0 + 6 * 3600, pause_s=0).deleted["raw"] == 100
    assert rollups.prune(conn, ret, now=T0 + 7 * 3600, pause_s=0).deleted["raw"] == 100
    # only the newest checkpoint old enough to matter is kept
    assert count(conn, "SELECT count(*) FROM rollup_checkpoints") == 1


def test_history_goes_coarser_where_a_tier_was_pruned(conn: sqlite3.Connection) -> None:
    a = add_host(conn, "a")
    insert_raw(conn, series(a, T0 - 3 * 3600, 3 * 360, 10.0))
    rollups.roll_up(conn, pause_s=0)
    args = (a, "a", "cpu.percent", dt(T0 - 2 * 3600), dt(T0), 240)  # 30 s buckets
    assert history.query(conn, *args).tier == "raw"
    rollups.prune(conn, RET, now=T0 + 60, pause_s=0)  # raw now starts at T0 - 2 h + 60
    got = history.query(conn, *args)
    assert got.tier == "1m"
    assert sum(p.count for p in got.points) == 2 * 360


# --- the scheduler -------------------------------------------------------------------------------
def test_scheduler_runs_periodic_and_on_demand_jobs() -> None:
    sched = Scheduler()
    ran: list[str] = []
    done = threading.Event()

    def tick() -> int:
        ran.append("tick")
        if ran.count("tick") >= 3:
            done.set()
        return len(ran)

    def broken() -> None:
        raise RuntimeError("disk on fire")

    sched.register("tick", 0.02, tick, first_delay_s=0)
    sched.register("broken", 0.02, broken, first_delay_s=0)
    sched.register("manual", 0, lambda: ran.append("manual"))
    sched.start()
    try:
        assert done.wait(5)
        assert sched.run_now("manual") is None and "manual" in ran
        with pytest.raises(RuntimeError, match="disk on fire"):
            sched.run_now("broken")
        with pytest.raises(UnknownJobError):
            sched.run_now("nope")
        late = threading.Event()
        sched.register("late", 0.01, late.set, first_delay_s=0)  # registered while running
        assert late.wait(5)
    finally:
        assert sched.stop(5)
    status = {s["name"]: s for s in sched.status()}
    assert status["broken"]["failures"] >= 2 and "disk on fire" in status["broken"]["last_error"]
    assert status["tick"]["runs"] >= 3 and status["tick"]["last_error"] is None
    assert ran.count("manual") == 1  # never scheduled: interval 0
    n = len(ran)
    time.sleep(0.1)
    assert len(ran) == n  # stopped means stopped


def test_a_stopping_scheduler_interrupts_a_long_prune(conn: sqlite3.Connection) -> None:
    a = add_host(conn, "a")
    insert_raw(conn, series(a, T0 - 86400, 3000, 10.0))
    rollups.roll_up(conn, pause_s=0, batch=10_000)
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    res = rollups.prune(conn, RET, now=T0, batch=100, pause_s=0, stop=stop)
    assert 0 < res.deleted["raw"] < 3000
