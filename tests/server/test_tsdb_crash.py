"""Compaction killed mid-transaction (a real process exit, no cleanup) loses and doubles nothing."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from datetime import timedelta
from pathlib import Path

from tests.server.test_tsdb_tiers import END, START, check_all
from tests.server.tsdb_helpers import rich_report, run_compact, series_at, store

ROOT = Path(__file__).resolve().parents[2]
# Compacts the database, exiting the process abruptly after ``kill_at`` progress callbacks.
KILLER = textwrap.dedent(
    """
    import os, sqlite3, sys
    from statusdash.server.tsdb.compact import compact

    db, kill_at, now = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    conn = sqlite3.connect(db, isolation_level=None)
    calls = 0

    def tick():
        global calls
        calls += 1
        if calls >= kill_at:
            os._exit(9)
        return 0

    conn.set_progress_handler(tick, 20)
    compact(conn, 3600, grace_s=0, now=now, pause_s=0)
    print("finished", calls)
    """
)


def counts(db: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(db)) as conn:
        head = conn.execute("SELECT count(*) FROM series_head").fetchone()[0]
        raw = conn.execute("SELECT coalesce(sum(rows), 0) FROM series_chunks WHERE tier = 'raw'")
        return int(head), int(raw.fetchone()[0])


def killed(db: Path, base: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    shutil.copyfile(base, db)
    return subprocess.run(
        [sys.executable, "-c", KILLER, str(db), str(kill_at), str(END.timestamp() + 60)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_a_killed_compaction_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    base = tmp_path / "base.db"
    reports = series_at(START, 1080)
    store(base, reports[:700])
    run_compact(base, now=START.timestamp() + 3600 + 60)  # the first hour is a chunk
    late = [rich_report(START + timedelta(seconds=10 * i + 5), i) for i in range(0, 360, 60)]
    store(base, reports[700:] + late)  # head: hours 2-3, and late rows for the first hour
    everything = reports + late
    assert sum(counts(base)) == len(everything)
    kills = 0
    states: set[int] = set()  # head rows left: killed before, between and after windows
    total = int(killed(tmp_path / "count.db", base, 10**9).stdout.split()[1])
    # points spread over the run: inside the scan, and inside each window's transaction
    for kill_at in (*(int(total * f) for f in (0.3, 0.63, 0.7, 0.8, 0.95)), 10**9):
        db = tmp_path / f"k{kill_at}.db"
        proc = killed(db, base, kill_at)
        if proc.returncode == 9:
            kills += 1
        else:
            assert proc.returncode == 0 and "finished" in proc.stdout, proc.stderr
        head, raw = counts(db)
        states.add(head)
        assert head + raw == len(everything), (kill_at, head, raw)  # each row in one place
        check_all(db, everything)  # whatever was committed, the answers are exact
        run_compact(db, now=END.timestamp() + 60)  # the next run finishes the job
        assert counts(db) == (0, len(everything))
        check_all(db, everything)
    assert kills >= 3  # the kills did land inside compaction
    assert len(states) >= 3, states  # ... before any window, between windows, and done
