"""Backups over a real server and SQLite file: taken while ingest runs they are sound, consistent
snapshots; restoring one gives a working server; rotation and the integrity check do their job."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from statusdash.server import backup
from statusdash.server.context import context_of
from statusdash.settings import Settings
from tests.conftest import Live, RunningServer, make_report, make_settings

K = 25  # reports a batch: every batch is committed whole or not at all
HOSTS = ("web-1", "web-2", "db-1")


class Ingest:
    """Agents sending K-report batches for every host until stopped; remembers what was sent."""

    def __init__(self, live: Live, app: Any) -> None:
        self.clients = {h: live.agent(h) for h in HOSTS}
        self.app = app
        self.sent: dict[str, dict[str, Any]] = {}
        self.accepted = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.start_at = datetime.now(UTC) - timedelta(hours=20)

    def _run(self) -> None:
        i = 0
        try:
            while not self.stop.is_set() and i < 2000:
                host = HOSTS[i % len(HOSTS)]
                at = self.start_at + timedelta(seconds=10 * K * (i // len(HOSTS)))
                batch = [make_report(host, at=at + timedelta(seconds=10 * j)) for j in range(K)]
                r = self.clients[host].post("/api/metrics/batch", json={"reports": batch})
                assert r.status_code == 200, r.text
                self.accepted += r.json()["accepted"]
                self.sent.update((b["report_id"], b) for b in batch)
                if i % 10 == 0:
                    jobs = context_of(self.app).jobs.scheduler
                    jobs.run_now("rollup")  # rollups commit beside ingest
                i += 1
        except BaseException as exc:
            self.error = exc

    def wait_rows(self, db: Path, n: int) -> None:
        deadline = time.monotonic() + 30
        while rows(db) < n:
            assert self.error is None and time.monotonic() < deadline
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert self.error is None, self.error


def rows(db: Path, where: str = "") -> int:
    with closing(sqlite3.connect(db)) as conn:  # closed now: a lingering one would hold the file
        return int(conn.execute(f"SELECT count(*) FROM samples {where}").fetchone()[0])  # noqa: S608


def test_backup_during_ingest_is_consistent_and_restores_to_a_working_server(
    tmp_path: Path,
) -> None:
    settings: Settings = make_settings(tmp_path / "data")
    db = settings.db_path
    server = RunningServer(settings).start()
    live = Live(server)
    ingest = Ingest(live, server.app)
    ingest.thread.start()
    try:
        ingest.wait_rows(db, 20 * K)
        seen: list[int] = []

        def progress(done: int, total: int) -> None:
            seen.append(rows(db))  # what is committed in the live file meanwhile
            time.sleep(0.002)

        dest = tmp_path / "snap.db"
        before = rows(db)
        result = backup.backup_database(db, dest, progress=progress, pages_per_step=1)
        after = rows(db)
        scheduled = server.ctx.jobs.scheduler.run_now("backup")
        with pytest.raises(backup.BackupError, match="in use"):
            backup.restore(dest, db)
    finally:
        ingest.finish()
    assert result.integrity == "ok" and result.pages > 20
    assert len(seen) >= result.pages - 1 and seen[-1] > seen[0]  # ingest ran during the copy
    assert isinstance(scheduled, backup.BackupResult)
    assert scheduled.path.parent == settings.status_data_dir / "backups"
    assert backup.check_database(scheduled.path) == "ok"

    snap = sqlite3.connect(dest)
    n = int(snap.execute("SELECT count(*) FROM samples").fetchone()[0])
    assert before <= n <= after and n % K == 0  # one snapshot, whole batches only
    for host, last, newest in snap.execute(
        "SELECT name, last_collected, (SELECT max(ts) FROM samples WHERE host_id = hosts.id)"
        " FROM hosts"
    ):
        # the host row is a snapshot written with its samples, at most every PERSIST_S: it may
        # lag them, never run ahead
        assert last <= newest, host
    mark = snap.execute("SELECT value FROM history_state WHERE name = 'rollup_id'").fetchone()[0]
    rolled = int(snap.execute("SELECT count(*) FROM samples WHERE id <= ?", (mark,)).fetchone()[0])
    assert rolled > 0
    for table in ("rollup_1m", "rollup_1h"):
        assert snap.execute(f"SELECT sum(n) FROM {table}").fetchone()[0] == rolled  # noqa: S608
    in_backup = [
        str(uuid.UUID(bytes=r[0]))
        for r in snap.execute(
            "SELECT report_id FROM samples WHERE host_id = (SELECT id FROM hosts"
            " WHERE name = 'web-1')"
        )
    ]
    snap.close()

    # restore: stop the server, roll the live database back to the snapshot, start again
    server.stop()
    assert rows(db) > n
    restored = backup.restore(dest, db)
    assert restored.saved_previous is not None and rows(restored.saved_previous) > n
    assert rows(db) == n
    server = RunningServer(settings).start()
    try:
        live = Live(server)
        agent = live.agent("web-1")  # its key is in the restored database
        old = ingest.sent[in_backup[0]]
        assert agent.post("/api/metrics/report", json=old).json()["duplicates"] == 1
        fresh = make_report("web-1")
        assert agent.post("/api/metrics/report", json=fresh).json() == {
            "accepted": 1,
            "duplicates": 0,
            "high_water": ANY,
        }
        reader = live.reader()
        assert sorted(h["host"] for h in reader.get("/api/hosts").json()) == sorted(HOSTS)
        hist = reader.get(
            "/api/hosts/db-1/history", params={"since": "2d", "points": 48, "metric": "cpu.percent"}
        ).json()
        in_db1 = rows(db, "WHERE host_id = (SELECT id FROM hosts WHERE name = 'db-1')")
        assert sum(p["count"] for p in hist["points"]) == in_db1 > 0
        server.ctx.jobs.scheduler.run_now("rollup")
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT sum(n) FROM rollup_1m").fetchone()[0] == n + 1
    finally:
        server.stop()


def test_rotation_keeps_the_newest_and_nothing_else(tmp_path: Path) -> None:
    db = tmp_path / "statusdash.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE hosts (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE samples (id INTEGER PRIMARY KEY)")
    bdir = tmp_path / "backups"
    bdir.mkdir()
    (bdir / "mine.db").write_text("not ours to delete")
    made = [backup.scheduled_backup(db, bdir, keep=2).path for _ in range(4)]
    assert backup.list_backups(bdir) == made[-2:]
    assert (bdir / "mine.db").exists()
    assert backup.newest_backup_age(bdir) is not None
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.backup_database(db, made[-1])


def test_check_finds_a_damaged_copy(tmp_path: Path) -> None:
    db = tmp_path / "statusdash.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE hosts (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("CREATE TABLE samples (id INTEGER PRIMARY KEY, v BLOB)")
        conn.execute("CREATE INDEX ix ON samples (v)")
        conn.executemany("INSERT INTO samples (v) VALUES (randomblob(300))", [()] * 500)
        conn.commit()
    copy = backup.backup_database(db, tmp_path / "copy.db").path
    assert backup.check_database(copy) == "ok"
    data = bytearray(copy.read_bytes())
    page = 4096
    data[10 * page + 100 : 10 * page + 400] = b"\xff" * 300  # scribble over a page
    copy.write_bytes(bytes(data))
    assert backup.check_database(copy) != "ok"
    with pytest.raises(backup.BackupError, match="not a sound"):
        backup.restore(copy, tmp_path / "target.db")
    assert not (tmp_path / "target.db").exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
    assert "not a statusdash database" in backup.check_database(other)
