"""``statusdash db backup|check|prune|restore``: run on the server host, on STATUS_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from statusdash import units
from statusdash.cli.boundary import fail, group
from statusdash.cli.common import DataDirOpt, JsonOpt, print_json, settings

if TYPE_CHECKING:
    from statusdash.settings import Settings

app = group(help="The server's database: backups, integrity check, retention, restore.")


def _paths(data_dir: Path | None) -> tuple[Settings, Path, Path]:
    """The settings (``--data-dir`` wins), the database and where its backups go."""
    s = settings(status_data_dir=data_dir)
    return s, s.db_path, s.backups_path


def _need_db(db: Path) -> None:
    if not db.exists():
        fail(f"no database at {db} (set STATUS_DATA_DIR or pass --data-dir)")


@app.command("backup")
def backup_cmd(
    to: Annotated[
        Path | None,
        typer.Option(
            "--to", help="file (or directory) to write; default BACKUP_DIR, else DATA_DIR/backups"
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy the database while the server runs (one consistent snapshot), then check the copy.

    Without --to the copy goes to BACKUP_DIR (else DATA_DIR/backups) and only the newest
    BACKUP_KEEP are kept.
    """
    import sqlite3
    from contextlib import closing

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from statusdash.server import backup

    os.umask(0o077)  # the copy is as private as the database
    s, db, backups = _paths(data_dir)
    _need_db(db)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("backup", total=None)
        page = 4096

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done * page, total=total * page)

        try:
            with closing(sqlite3.connect(db)) as conn:
                page = int(conn.execute("PRAGMA page_size").fetchone()[0])
            if to is None:
                result = backup.scheduled_backup(db, backups, s.backup_keep, progress=tick)
            else:
                dest = to / backup.backup_name() if to.is_dir() else to
                result = backup.backup_database(db, dest, progress=tick)
        except (backup.BackupError, sqlite3.Error, OSError) as exc:
            fail(f"backup failed: {exc}")
    if as_json:
        print_json(
            {
                "path": str(result.path),
                "bytes": result.bytes,
                "seconds": round(result.seconds, 3),
                "integrity": result.integrity,
                "removed": [str(p) for p in result.removed],
            }
        )
        return
    typer.echo(
        f"backup written: {result.path} ({units.size(result.bytes, 'B')},"
        f" integrity {result.integrity}, {result.seconds:.1f} s)"
    )
    for p in result.removed:
        typer.echo(f"removed old backup {p.name}", err=True)


@app.command("check")
def check(
    data_dir: DataDirOpt = None,
    quick: Annotated[bool, typer.Option("--quick", help="quick_check instead")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run SQLite's integrity check (safe while the server runs) and show what each tier holds."""
    import sqlite3
    from contextlib import closing

    from statusdash.server import backup

    _, db, backups = _paths(data_dir)
    _need_db(db)
    from statusdash.errors import StatusdashError
    from statusdash.server import migrations

    try:
        verdict = backup.check_database(db, quick=quick)
        info = _tiers(db) if verdict == "ok" else {}
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            version = migrations.inspect(conn).version
    except (backup.BackupError, sqlite3.Error, StatusdashError) as exc:
        fail(f"check failed: {exc}")
    found = backup.list_backups(backups)
    report: dict[str, Any] = {
        "database": str(db),
        "integrity": verdict,
        "schema_version": version,
        "schema_known": migrations.VERSION,
        **info,
        "backups": len(found),
        "newest_backup": str(found[-1]) if found else None,
    }
    if as_json:
        print_json(report)
    else:
        typer.echo(f"{db}: integrity {verdict}")
        upgrade = "current" if version == migrations.VERSION else "upgraded at the next start"
        typer.echo(f"  schema version {version} ({upgrade})")
        for name, n in report.get("rows", {}).items():
            typer.echo(f"  {name:<4} {units.count(n, 'row'):>17}")
        if "rollup_lag" in report:
            typer.echo(f"  raw rows not rolled up yet: {report['rollup_lag']:,}")
        typer.echo(
            f"  {units.count(len(found), 'backup')}"
            + (f", newest {found[-1].name}" if found else "")
        )
    if verdict != "ok":
        raise typer.Exit(1)


def _tiers(db: Path) -> dict[str, Any]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
        rows = {"raw": int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])}
        if {"rollup_1m", "rollup_1h", "history_state"} <= names:
            from statusdash.server import rollups

            for t in ("1m", "1h"):
                q = f"SELECT count(*) FROM rollup_{t}"  # noqa: S608
                rows[t] = int(conn.execute(q).fetchone()[0])
            return {"rows": rows, "rollup_lag": rollups.lag(conn)}
        return {"rows": rows}
    finally:
        conn.close()


@app.command("prune")
def prune(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Roll up pending raw rows, then delete what is past each tier's retention (now)."""
    import sqlite3

    from statusdash.server import rollups
    from statusdash.server.db import connect, ensure_schema

    s, db, _ = _paths(data_dir)
    _need_db(db)
    retention = rollups.Retention.from_settings(s)
    try:
        ensure_schema(db)
        conn = connect(db, s.db_synchronous)
        try:
            rolled = rollups.roll_up(conn)
            pruned = rollups.prune(conn, retention)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        fail(f"prune failed: {exc}")
    if as_json:
        print_json({"rolled_up": rolled.rows, "deleted": pruned.deleted})
        return
    d = pruned.deleted
    typer.echo(
        f"rolled up {units.count(rolled.rows, 'raw row')}; deleted {d['raw']:,} raw,"
        f" {d['1m']:,} 1-minute and {units.count(d['1h'], '1-hour row')} past retention"
    )


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="a backup made by `db backup`", exists=True)],
    data_dir: DataDirOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
    no_keep_previous: Annotated[
        bool,
        typer.Option(
            "--no-keep-previous",
            help="do not save the current database first (as statusdash.db.pre-restore-*)",
        ),
    ] = False,
) -> None:
    """Replace the database with FILE. Stop the server first: this refuses while it runs.

    FILE must be one of our databases with no triggers or views, of a schema version this
    statusdash knows; an older one is upgraded after the copy, as a start would.
    """
    import sqlite3
    from contextlib import closing

    from statusdash.errors import StatusdashError
    from statusdash.server import backup, migrations
    from statusdash.server.db import ensure_schema

    os.umask(0o077)  # the restored database and the pre-restore copy are private
    _, db, _ = _paths(data_dir)
    try:
        with closing(sqlite3.connect(f"file:{file}?mode=ro", uri=True)) as conn:
            migrations.check_restorable(conn)
    except (StatusdashError, sqlite3.Error) as exc:
        fail(f"restore refused: {exc}")
    if not yes and not typer.confirm(f"Replace {db} with {file}?"):
        fail("restore cancelled", 1)
    try:
        result = backup.restore(file, db, keep_previous=not no_keep_previous)
        upgraded = ensure_schema(db)
    except (backup.BackupError, sqlite3.Error, OSError, StatusdashError) as exc:
        fail(f"restore failed: {exc}")
    typer.echo(f"restored {db} from {file}")
    if upgraded.before != upgraded.after:
        typer.echo(f"schema upgraded from version {upgraded.before} to {upgraded.after}")
    if result.saved_previous is not None:
        typer.echo(f"the previous database is kept as {result.saved_previous}", err=True)
