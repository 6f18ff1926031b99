"""Online backups of the SQLite file, their rotation and integrity check, and restore.

A backup copies pages with SQLite's backup API while holding one read transaction on the source,
so it is a consistent snapshot even with ingest running (WAL: readers never block the writer). Held
open, that snapshot also keeps a stepwise copy from restarting each time ingest commits: without
it a copy in steps never finishes under steady ingest.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from statusdash.errors import StatusdashError
from statusdash.fsutil import PRIVATE_DIR, PRIVATE_FILE, fsync_dir
from statusdash.server.db import BUSY_TIMEOUT_MS
from statusdash.server.migrations import REQUIRED_TABLES

PAGES_PER_STEP = 1024  # 4 MiB at the default page size: a progress tick, not a lock
_NAME = re.compile(r"^statusdash-\d{8}T\d{6}\.\d{3}Z\.db$")
Progress = Callable[[int, int], None]  # (pages copied, total pages)


class BackupError(StatusdashError):
    """A backup or restore could not be made, or what it made is not a sound database."""


@dataclass
class BackupResult:
    path: Path
    bytes: int
    pages: int
    seconds: float
    integrity: str = "ok"
    removed: list[Path] = field(default_factory=list)


def backup_name(now: float | None = None) -> str:
    dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return f"statusdash-{dt:%Y%m%dT%H%M%S}.{dt.microsecond // 1000:03d}Z.db"


def backup_database(
    db_path: Path,
    dest: Path,
    *,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    pages_per_step: int = PAGES_PER_STEP,
    check: bool = True,
) -> BackupResult:
    """Copy ``db_path`` to ``dest`` (which must not exist) as one snapshot; checks the copy."""
    if not db_path.exists():
        raise BackupError(f"no database at {db_path}")
    if dest.exists():
        raise BackupError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    _create_private(tmp)
    t0 = time.monotonic()

    def step(_status: int, remaining: int, total: int) -> None:
        if stop is not None and stop():
            raise BackupError("backup interrupted (server stopping)")
        if progress is not None:
            progress(total - remaining, total)

    src = sqlite3.connect(db_path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    dst = sqlite3.connect(tmp, isolation_level=None)
    try:
        src.execute("BEGIN")  # pin one snapshot for the whole copy
        src.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        src.backup(dst, pages=pages_per_step, progress=step)
        src.execute("ROLLBACK")
        pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        integrity = _integrity(dst) if check else "unchecked"
        dst.close()
        if integrity not in ("ok", "unchecked"):
            raise BackupError(f"the copy failed its integrity check: {integrity}")
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        dst.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    return BackupResult(dest, dest.stat().st_size, pages, time.monotonic() - t0, integrity)


def _create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (whatever the umask), for SQLite to fill."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    os.chmod(path, PRIVATE_FILE)


def _integrity(conn: sqlite3.Connection, quick: bool = False) -> str:
    rows = conn.execute(f"PRAGMA {'quick_check' if quick else 'integrity_check'}").fetchall()
    return "; ".join(str(r[0]) for r in rows[:20])


def check_database(path: Path, *, quick: bool = False) -> str:
    """``ok``, or what SQLite's integrity check found (reads only; safe beside a running server)."""
    if not path.exists():
        raise BackupError(f"no database at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        result = _integrity(conn, quick)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        return f"not a usable SQLite database: {exc}"
    finally:
        conn.close()
    missing = sorted(REQUIRED_TABLES - names)
    if result == "ok" and missing:
        return f"not a statusdash database (no {', '.join(missing)} table)"
    return result


def list_backups(backup_dir: Path) -> list[Path]:
    """Our scheduled backups in ``backup_dir``, oldest first (other files are never touched)."""
    if not backup_dir.is_dir():
        return []
    return sorted(p for p in backup_dir.iterdir() if _NAME.match(p.name) and p.is_file())


def rotate(backup_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` scheduled backups; returns what it deleted."""
    old = list_backups(backup_dir)[: -max(1, keep)]
    for p in old:
        p.unlink(missing_ok=True)
    return old


def newest_backup_age(backup_dir: Path) -> float | None:
    found = list_backups(backup_dir)
    return None if not found else max(0.0, time.time() - found[-1].stat().st_mtime)


def scheduled_backup(
    db_path: Path,
    backup_dir: Path,
    keep: int,
    *,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> BackupResult:
    """A new checked backup in ``backup_dir``, then the oldest ones beyond ``keep`` removed."""
    dest = backup_dir / backup_name()
    while dest.exists():  # two in the same millisecond
        time.sleep(0.002)
        dest = backup_dir / backup_name()
    result = backup_database(db_path, dest, progress=progress, stop=stop)
    result.removed = rotate(backup_dir, keep)
    return result


# --- restore -----------------------------------------------------------------------------------
def server_running(db_path: Path) -> bool:
    """True when another connection has the database open (a running server always does)."""
    if not db_path.exists():
        return False
    conn = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


@dataclass
class RestoreResult:
    restored_from: Path
    saved_previous: Path | None


def restore(
    backup_file: Path, db_path: Path, *, keep_previous: bool = True, now: float | None = None
) -> RestoreResult:
    """Replace the database at ``db_path`` with ``backup_file``. The server must be stopped.

    The backup is checked first; the current database is saved beside it as
    ``statusdash.db.pre-restore-<time>`` (unless ``keep_previous`` is off); the copy goes through
    the backup API into the live file, so its WAL is handled by SQLite, not by moving files.
    """
    verdict = check_database(backup_file)
    if verdict != "ok":
        raise BackupError(f"{backup_file} is not a sound statusdash backup: {verdict}")
    if server_running(db_path):
        raise BackupError(
            f"{db_path} is in use: stop the server (and any `statusdash` command using it) first"
        )
    saved: Path | None = None
    if db_path.exists() and keep_previous:
        stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        saved = db_path.with_name(f"{db_path.name}.pre-restore-{stamp:%Y%m%dT%H%M%SZ}")
        backup_database(db_path, saved, check=False)
    db_path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if not db_path.exists():
        _create_private(db_path)  # SQLite gives its WAL and SHM the database file's mode
    dst = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        dst.execute("PRAGMA locking_mode=EXCLUSIVE")  # held until close: no server may start
        dst.execute("BEGIN EXCLUSIVE")
        dst.execute("COMMIT")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
        verdict = _integrity(dst, quick=True)
    except sqlite3.OperationalError as exc:
        raise BackupError(f"cannot restore into {db_path}: {exc}") from exc
    finally:
        src.close()
        dst.close()
    if verdict != "ok":
        raise BackupError(f"the restored database failed its check: {verdict}")
    return RestoreResult(backup_file, saved)
