"""The SQLite file: pragmas, the schema check and upgrade at open, per-thread read connections."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from statusdash.server import migrations

BUSY_TIMEOUT_MS = 10_000
log = logging.getLogger(__name__)


def _pragmas(conn: sqlite3.Connection, synchronous: str = "FULL") -> None:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A raw connection in autocommit mode (we issue BEGIN/COMMIT ourselves)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    _pragmas(conn, synchronous)
    return conn


def ensure_schema(path: Path) -> migrations.Upgrade:
    """Create or upgrade the schema of the file (``migrations.upgrade``); refuses a foreign one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        result = migrations.upgrade(conn)
    finally:
        conn.close()
    if result.changed and result.before:
        log.info(
            "%s: schema upgraded from version %d to %d%s",
            path,
            result.before,
            result.after,
            "".join(f"; added {x}" for x in result.created + result.added),
        )
    return result


def make_engine(path: Path) -> Engine:
    """A SQLAlchemy engine on the file, schema ensured, for the admin commands and reads."""
    ensure_schema(path)
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        _pragmas(dbapi_conn)

    return engine


@contextmanager
def session(path: Path) -> Iterator[Session]:
    """A short-lived SQLModel session on the database file (admin commands)."""
    engine = make_engine(path)
    try:
        with Session(engine) as s:
            yield s
    finally:
        engine.dispose()


class Readers:
    """One read connection per thread: WAL lets readers run beside the writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
