"""``statusdash db`` on the server host's data dir: backup, check, prune and restore, for real."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statusdash.cli.db import app
from statusdash.server import rollups
from statusdash.server.db import connect
from tests.conftest import Live, make_report
from tests.server.test_history_tiers import add_host, insert_raw, new_db, series

runner = CliRunner()


def rows(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])


def test_backup_check_and_restore_round_trip(
    live_server: Live, tmp_path: Path, data_env: Path
) -> None:
    assert live_server.settings.status_data_dir == data_env
    db = live_server.settings.db_path
    agent = live_server.agent("web-1")
    batch = [make_report("web-1") for _ in range(30)]
    assert agent.post("/api/metrics/batch", json={"reports": batch}).json()["accepted"] == 30

    r = runner.invoke(app, ["backup", "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["integrity"] == "ok" and Path(made["path"]).parent == data_env / "backups"
    assert rows(Path(made["path"])) == 30

    target = tmp_path / "copy.db"
    r = runner.invoke(app, ["backup", "--to", str(target)])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"backup written: {target}") and "integrity ok" in r.stdout
    r = runner.invoke(app, ["backup", "--to", str(target)])
    assert r.exit_code == 1 and "already exists" in r.stderr
    assert "Traceback" not in r.output

    r = runner.invoke(app, ["check", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["integrity"] == "ok" and report["rows"]["raw"] == 30 and report["backups"] == 1
    r = runner.invoke(app, ["check"])
    assert r.exit_code == 0 and "integrity ok" in r.stdout

    agent.post("/api/metrics/report", json=make_report("web-1"))
    r = runner.invoke(app, ["restore", str(target), "--yes"])
    assert r.exit_code == 1 and "stop the server" in r.stderr
    assert rows(db) == 31

    live_server.server.stop()
    r = runner.invoke(app, ["restore", str(target)], input="n\n")
    assert r.exit_code == 1 and "cancelled" in r.stderr
    r = runner.invoke(app, ["restore", str(target), "--yes"])
    assert r.exit_code == 0, r.output
    assert rows(db) == 30
    (saved,) = data_env.glob("statusdash.db.pre-restore-*")
    assert rows(saved) == 31


def test_prune_deletes_past_retention_and_reports_it(data_env: Path) -> None:
    db = new_db(data_env.parent)
    now = time.time()
    # 40 days ago, on a minute boundary plus 5 s: with up to 1 s of jitter per sample, each of
    # the 120 samples (one a minute) falls in a minute of its own, whatever the clock says now
    old = (now - 40 * 86400) // 60 * 60 + 5
    with closing(connect(db, "NORMAL")) as conn:
        h = add_host(conn, "old-host")
        insert_raw(conn, series(h, old, 120, 60.0))  # two hours, 40 days ago
        insert_raw(conn, series(h, now - 600, 30, 10.0, seed=2))  # recent
        rollups.roll_up(conn, pause_s=0, now=now - 7 * 3600)  # as if they arrived 7 h ago
        insert_raw(conn, series(h, old, 5, 10.0, seed=3))  # a late spool, just now
    r = runner.invoke(app, ["prune", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["rolled_up"] == 5
    # raw: the 120 old rows, not the 5 that arrived inside the replay window; 1-minute rows of
    # 40 days ago are past RETENTION_DAYS (30); 1-hour rows are kept for a year
    assert out["deleted"] == {"raw": 120, "1m": 120, "1h": 0}
    assert rows(db) == 35
    r = runner.invoke(app, ["prune"])
    assert r.exit_code == 0 and "deleted 0 raw, 0 1-minute and 0 1-hour rows" in r.stdout


def test_check_and_backup_fail_in_one_line(data_env: Path, tmp_path: Path) -> None:
    for cmd in (["check"], ["backup"], ["prune"]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 1 and r.stderr.startswith("statusdash: no database at"), cmd
    data_env.mkdir()
    (data_env / "statusdash.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    r = runner.invoke(app, ["check"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    r = runner.invoke(app, ["restore", str(tmp_path / "missing.db"), "--yes"])
    assert r.exit_code == 2


def test_backup_and_check_use_backup_dir(
    data_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BACKUP_DIR is where ``db backup`` writes and ``db check`` counts, as for the server's."""
    new_db(data_env.parent)
    elsewhere = tmp_path / "offsite"
    monkeypatch.setenv("BACKUP_DIR", str(elsewhere))
    r = runner.invoke(app, ["backup", "--json"])
    assert r.exit_code == 0, r.output
    assert Path(json.loads(r.stdout)["path"]).parent == elsewhere
    assert not (data_env / "backups").exists()
    r = runner.invoke(app, ["check", "--json", "--data-dir", str(data_env)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["backups"] == 1
