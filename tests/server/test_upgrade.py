"""Schema versions: a database made by main before versioning, upgraded by a real start-up.

``tests/fixtures/db_v1.sqlite`` was written by a real server of that main (see
``tests/fixtures/make_db_v1.py``); ``db_v1.json`` says what it holds.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData
from sqlmodel import SQLModel, create_engine
from typer.testing import CliRunner

from statusdash.cli.db import app as db_app
from statusdash.server import migrations
from statusdash.server.app import create_app
from statusdash.server.db import connect, ensure_schema
from statusdash.server.keys import list_keys
from statusdash.server.runner import ServerConfigError, uvicorn_config
from tests.conftest import Live, RunningServer, make_report, make_settings

FIXTURES = Path(__file__).parents[1] / "fixtures"
MANIFEST: dict[str, Any] = json.loads((FIXTURES / "db_v1.json").read_text())
TIERS = {"raw": "samples", "1m": "rollup_1m", "1h": "rollup_1h"}
runner = CliRunner()


def v1_data_dir(tmp_path: Path) -> Path:
    """A data dir whose database is a copy of the version-1 fixture."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(FIXTURES / "db_v1.sqlite", data / "statusdash.db")
    return data


def user_version(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def counts(db: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with closing(sqlite3.connect(db)) as conn:
        for tier, table in TIERS.items():
            q = f"SELECT h.name, count(*) FROM {table} s JOIN hosts h ON h.id = s.host_id GROUP BY h.name"  # noqa: E501, S608
            for host, n in conn.execute(q):
                out.setdefault(host, {})[tier] = int(n)
    return out


def schema_cookie(db: Path) -> tuple[int, list[tuple[Any, ...]]]:
    """SQLite's schema version (bumped by every schema change) and our log of versions."""
    with closing(sqlite3.connect(db)) as conn:
        cookie = int(conn.execute("PRAGMA schema_version").fetchone()[0])
        return cookie, conn.execute("SELECT * FROM schema_meta ORDER BY version").fetchall()


def test_the_fixture_is_version_one() -> None:
    db = FIXTURES / "db_v1.sqlite"
    assert user_version(db) == 0 and MANIFEST["user_version"] == 0
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        assert migrations.inspect(conn).version == migrations.LEGACY == 1
    assert counts(db) == MANIFEST["samples"]


def test_start_up_upgrades_the_v1_database_and_serves_everything(tmp_path: Path) -> None:
    settings = make_settings(v1_data_dir(tmp_path))
    db = settings.db_path
    server = RunningServer(settings).start()
    try:
        assert user_version(db) == migrations.VERSION == 3
        assert counts(db) == MANIFEST["samples"]
        old_keys = {k["host"]: k["key"] for k in MANIFEST["keys"]}
        live = Live(server, keys=old_keys)  # the agents' keys from before the upgrade
        with live.reader() as reader:
            hosts = {h["host"] for h in reader.get("/api/hosts").json()}
            assert hosts == set(MANIFEST["samples"])
            since = datetime.fromtimestamp(MANIFEST["first_ts"] - 3600, UTC).isoformat()
            until = datetime.fromtimestamp(MANIFEST["last_ts"] + 3600, UTC).isoformat()
            for host, tiers in MANIFEST["samples"].items():
                r = reader.get(
                    f"/api/hosts/{host}/history",
                    params={"metric": "cpu.percent", "since": since, "until": until},
                )
                assert r.status_code == 200, r.text
                points = r.json()["points"]
                assert sum(p["count"] for p in points) == tiers["raw"]
                cpu = 95.0 if host == "web-1" else 20.0
                assert {p["avg"] for p in points} == {cpu}
            alerts = {a["id"]: a for a in reader.get("/api/alerts?state=all").json()}
            for a in MANIFEST["alerts"]:
                got = alerts[a["id"]]
                assert (got["rule"], got["host"], got["subject"]) == (
                    a["rule"],
                    a["host"],
                    a["subject"],
                )
            names = {(s["host"], s["name"]) for s in reader.get("/api/services").json()}
            assert names == {(s["host"], s["name"]) for s in MANIFEST["services"]}
        for host in old_keys:
            with live.agent(host) as agent:
                r = agent.post("/api/metrics/report", json=make_report(host))
                assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    finally:
        server.stop()
    assert {(k.key_id, k.host) for k in list_keys(db)} == {
        (k["key_id"], k["host"]) for k in MANIFEST["keys"]
    }
    with closing(sqlite3.connect(db)) as conn:
        silences = conn.execute("SELECT id, host, rule FROM alert_silences").fetchall()
        assert silences == [(s["id"], s["host"], s["rule"]) for s in MANIFEST["silences"]]
        steps = conn.execute("SELECT version, how FROM schema_meta ORDER BY version").fetchall()
        assert steps == [(2, "upgraded from 1"), (3, "upgraded from 2")]
        # version 3: each report sent after the upgrade has its labelled series (4 cores, 1 mount)
        metrics = [m for (m,) in conn.execute("SELECT metric FROM series ORDER BY id")]
        assert metrics.count("cpu.core.percent") == 4 * len(old_keys)
        assert metrics.count("disk.mount.percent") == len(old_keys)
        assert conn.execute("SELECT count(*) FROM series_head").fetchone()[0] == len(old_keys)


def test_a_second_start_changes_nothing(tmp_path: Path) -> None:
    settings = make_settings(v1_data_dir(tmp_path))
    create_app(settings)
    before = schema_cookie(settings.db_path)
    create_app(settings)
    result = ensure_schema(settings.db_path)
    assert (result.before, result.after, result.changed) == (3, 3, False)
    assert schema_cookie(settings.db_path) == before


def test_a_newer_database_is_refused_with_the_versions(tmp_path: Path) -> None:
    settings = make_settings(v1_data_dir(tmp_path))
    with closing(sqlite3.connect(settings.db_path)) as conn:
        conn.execute("PRAGMA user_version = 4")
    message = (
        f"{settings.db_path}: this database has schema version 4; this statusdash knows up to 3:"
        " upgrade statusdash"
    )
    with pytest.raises(migrations.SchemaError) as exc:
        create_app(settings)
    assert str(exc.value) == message
    with pytest.raises(ServerConfigError) as cfg:  # what `server run` prints as one line
        uvicorn_config(settings)
    assert str(cfg.value) == message
    assert user_version(settings.db_path) == 4  # untouched


def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    settings.status_data_dir.mkdir()
    with closing(sqlite3.connect(settings.db_path)) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.commit()
    with pytest.raises(migrations.SchemaError, match="is not a statusdash database"):
        create_app(settings)
    with closing(sqlite3.connect(settings.db_path)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_schema")]
        assert names == ["invoices"]


def test_a_fresh_database_has_the_declared_schema(tmp_path: Path) -> None:
    ours, reference = tmp_path / "ours.db", tmp_path / "reference.db"
    result = ensure_schema(ours)
    assert (result.before, result.after) == (0, migrations.VERSION)
    engine = create_engine(f"sqlite:///{reference}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()

    def schema(db: Path) -> set[tuple[str, str]]:
        with closing(sqlite3.connect(db)) as conn:
            q = "SELECT name, sql FROM sqlite_schema WHERE name != 'schema_meta' AND sql != ''"
            return {(n, " ".join(s.split())) for n, s in conn.execute(q)}

    assert schema(ours) == schema(reference)
    assert user_version(ours) == migrations.VERSION
    assert schema_cookie(ours)[1][0][3] == "created"


def test_a_declared_nullable_column_is_added_to_an_old_table(tmp_path: Path) -> None:
    db = v1_data_dir(tmp_path) / "statusdash.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("ALTER TABLE samples_pending DROP COLUMN procs")  # as an older catalogue
    result = ensure_schema(db)
    # The v1 file also lacks the columns issue 11 added (hosts rm, resolve by hand).
    added = ["alerts.resolved_by", "alerts.resolved_reason", "hosts.removed_at"]
    assert result.added == [*added, "samples_pending.procs"] and result.after == 3
    with closing(sqlite3.connect(db)) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(samples_pending)")]
        assert cols[-1] == "procs"
    # A new series in a newer catalogue: one more nullable column on samples, no step written.
    meta = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(meta)
    meta.tables["samples"].append_column(Column("gpu", Integer))
    conn = connect(db)
    try:
        assert migrations.upgrade(conn, meta).added == ["samples.gpu"]
        assert not migrations.upgrade(conn, meta).changed
        n = conn.execute("SELECT count(*) FROM samples WHERE gpu IS NULL").fetchone()[0]
        assert n == sum(t["raw"] for t in MANIFEST["samples"].values())
        meta.tables["hosts"].append_column(Column("rack", Integer, nullable=False))
        with pytest.raises(migrations.SchemaError, match="needs a migration step"):
            migrations.upgrade(conn, meta)
    finally:
        conn.close()


def test_restore_upgrades_an_older_backup_and_check_reports_the_version(
    tmp_path: Path, data_env: Path
) -> None:
    ensure_schema(data_env / "statusdash.db")
    r = runner.invoke(db_app, ["restore", str(FIXTURES / "db_v1.sqlite"), "--yes"])
    assert r.exit_code == 0, r.output
    assert "schema upgraded from version 1 to 3" in r.stdout
    assert counts(data_env / "statusdash.db") == MANIFEST["samples"]
    r = runner.invoke(db_app, ["check", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert (report["schema_version"], report["schema_known"]) == (3, 3)
    r = runner.invoke(db_app, ["check"])
    assert "schema version 3 (current)" in r.stdout


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        (
            "CREATE TRIGGER wipe AFTER INSERT ON hosts BEGIN DELETE FROM api_keys; END",
            "has trigger wipe",
        ),
        ("CREATE VIEW leak AS SELECT * FROM api_keys", "has view leak"),
        ("PRAGMA user_version = 7", "has schema version 7; this statusdash knows up to 3"),
        ("DROP TABLE samples", "is not a statusdash database (it has no samples table)"),
    ],
)
def test_restore_refuses_code_newer_and_foreign_files(
    tmp_path: Path, data_env: Path, sql: str, says: str
) -> None:
    current = data_env / "statusdash.db"
    ensure_schema(current)
    bad = tmp_path / "bad.db"
    shutil.copyfile(FIXTURES / "db_v1.sqlite", bad)
    with closing(sqlite3.connect(bad)) as conn:
        conn.execute(sql)
        conn.commit()
    before = current.read_bytes()
    r = runner.invoke(db_app, ["restore", str(bad), "--yes"])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("statusdash: restore refused: ") and says in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert current.read_bytes() == before


def test_check_reports_an_old_version_without_upgrading_it(tmp_path: Path, data_env: Path) -> None:
    data_env.mkdir()
    shutil.copyfile(FIXTURES / "db_v1.sqlite", data_env / "statusdash.db")
    r = runner.invoke(db_app, ["check"])
    assert r.exit_code == 0, r.output
    assert "schema version 1 (upgraded at the next start)" in r.stdout
    assert user_version(data_env / "statusdash.db") == 0  # check only reads
