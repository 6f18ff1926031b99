"""The database's schema version and its upgrade: the one place that creates or changes tables.

The version lives in ``PRAGMA user_version``: an integer in the file header, readable without
any table (so a file of another program, or an empty one, is told apart before anything is
written), changed in the same transaction as the step it records, and carried by every copy the
backup API makes. Version 1 is the schema before versioning (``user_version`` 0 with our
tables). Each step in ``STEPS`` takes a database from the version before to its own, in one
transaction with the version bump; steps only change the schema, never rewrite rows, so an
upgrade takes the same milliseconds on any size of database (docs/upgrades.md).

Beside the steps, ``upgrade`` keeps the file in line with the SQLModel metadata: a declared table
that is missing is created and a declared nullable column that a table lacks is added (what a new
series in the metric catalogue needs), so adding either needs no hand-written step.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Column, MetaData, Table
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateColumn, CreateIndex, CreateTable
from sqlmodel import SQLModel

from statusdash import __version__
from statusdash.errors import Invalid
from statusdash.server import models as _models  # noqa: F401  (registers the tables)
from statusdash.server import rollup_models as _rollup_models  # noqa: F401
from statusdash.server.alerts import models as _alert_models  # noqa: F401
from statusdash.server.tsdb import tables as _tsdb_tables  # noqa: F401

# Without these a file is not ours, whatever its user_version says.
REQUIRED_TABLES = frozenset({"hosts", "samples"})
LEGACY = 1  # user_version 0 with our tables: the schema before versioning
_DIALECT = sqlite_dialect.dialect()


class SchemaError(Invalid):
    """The file is not a statusdash database this statusdash can use (foreign, newer, unsafe)."""


def _v2_schema_meta(conn: sqlite3.Connection) -> None:
    """Version 2: ``schema_meta``, the log of the versions applied, when and by which release."""
    _create_schema_meta(conn)


def _v3_series(conn: sqlite3.Connection) -> None:
    """Version 3: the labelled-series engine's tables (``server/tsdb/tables.py``), empty.

    The host-level history stays in ``samples`` and the rollup tables, untouched, so nothing is
    rewritten: the step takes milliseconds on any size of database.
    """
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    for name in ("series", "series_head", "series_chunks"):
        table = SQLModel.metadata.tables[name]
        if name in have:
            continue
        conn.execute(str(CreateTable(table).compile(dialect=_DIALECT)))
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            conn.execute(str(CreateIndex(index).compile(dialect=_DIALECT)))


STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _v2_schema_meta, 3: _v3_series}
VERSION = max(STEPS)


def _create_schema_meta(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_meta (version INTEGER PRIMARY KEY,"
        " applied_at REAL NOT NULL, statusdash TEXT NOT NULL, how TEXT NOT NULL)"
    )


def _record(conn: sqlite3.Connection, version: int, how: str) -> None:
    conn.execute(f"PRAGMA user_version = {int(version)}")
    conn.execute(
        "INSERT OR REPLACE INTO schema_meta (version, applied_at, statusdash, how)"
        " VALUES (?, ?, ?, ?)",
        (version, time.time(), __version__, how),
    )


@dataclass(frozen=True)
class Found:
    """What a file holds, read without writing: its version (0: empty), tables and code."""

    path: str
    version: int
    tables: frozenset[str]
    code: tuple[str, ...]  # triggers and views, as "trigger name" / "view name"


def inspect(conn: sqlite3.Connection) -> Found:
    """Read the schema version, the tables and any triggers or views; refuse what is not ours."""
    path = str(conn.execute("PRAGMA database_list").fetchone()[2]) or "this database"
    user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    rows = conn.execute(
        "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    tables = frozenset(name for kind, name in rows if kind == "table")
    code = tuple(sorted(f"{kind} {name}" for kind, name in rows if kind in ("trigger", "view")))
    if (tables or user_version) and not tables >= REQUIRED_TABLES:
        missing = ", ".join(sorted(REQUIRED_TABLES - tables))
        raise SchemaError(f"{path} is not a statusdash database (it has no {missing} table)")
    if user_version > VERSION:
        raise SchemaError(
            f"{path}: this database has schema version {user_version}; this statusdash knows"
            f" up to {VERSION}: upgrade statusdash"
        )
    version = user_version or (LEGACY if tables else 0)
    return Found(path, version, tables, code)


@dataclass
class Upgrade:
    """What ``upgrade`` did: versions before and after, tables created and columns added."""

    before: int
    after: int
    created: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # "table.column"

    @property
    def changed(self) -> bool:
        return self.before != self.after or bool(self.created or self.added)


def _missing(
    conn: sqlite3.Connection, metadata: MetaData
) -> tuple[list[Table], list[tuple[Table, Column[object]]]]:
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    tables = [t for t in metadata.sorted_tables if t.name not in have]
    columns: list[tuple[Table, Column[object]]] = []
    for table in metadata.sorted_tables:
        if table.name not in have:
            continue
        names = {r[1] for r in conn.execute(f'PRAGMA table_info("{table.name}")')}
        for col in table.columns:
            if col.name in names:
                continue
            if not col.nullable or col.primary_key:
                raise SchemaError(
                    f"table {table.name} lacks the column {col.name}, which is not nullable:"
                    " that change needs a migration step"
                )
            columns.append((table, col))
    return tables, columns


def _sync(conn: sqlite3.Connection, metadata: MetaData, result: Upgrade) -> None:
    """Create the declared tables that are missing and add the nullable columns tables lack."""
    tables, columns = _missing(conn, metadata)
    for table in tables:
        conn.execute(str(CreateTable(table).compile(dialect=_DIALECT)))
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            conn.execute(str(CreateIndex(index).compile(dialect=_DIALECT)))
        result.created.append(table.name)
    for table, col in columns:
        ddl = CreateColumn(col).compile(dialect=_DIALECT)
        conn.execute(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}')
        result.added.append(f"{table.name}.{col.name}")


def _in_txn(conn: sqlite3.Connection, work: Callable[[], None]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        work()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def upgrade(conn: sqlite3.Connection, metadata: MetaData | None = None) -> Upgrade:
    """Bring the database on ``conn`` (autocommit mode) to ``VERSION`` and the declared schema.

    An empty file gets the whole schema at ``VERSION``; an older one runs each later step in its
    own transaction; a current one that matches the metadata is not written at all. Two
    processes may race here: each step re-reads the version under the write lock.
    """
    meta = SQLModel.metadata if metadata is None else metadata
    found = inspect(conn)
    result = Upgrade(found.version, found.version)
    if found.version == 0:

        def create() -> None:
            if inspect(conn).version == 0:
                _sync(conn, meta, result)
                _create_schema_meta(conn)
                _record(conn, VERSION, "created")

        _in_txn(conn, create)
    for target in range(max(found.version, LEGACY) + 1, VERSION + 1):

        def step(target: int = target) -> None:
            if inspect(conn).version == target - 1:
                STEPS[target](conn)
                _record(conn, target, f"upgraded from {target - 1}")

        _in_txn(conn, step)
    result.after = inspect(conn).version
    tables, columns = _missing(conn, meta)
    if tables or columns:
        _in_txn(conn, lambda: _sync(conn, meta, result))
    return result


def check_restorable(conn: sqlite3.Connection) -> Found:
    """``inspect``, and refuse a file with triggers or views: a restored file must not run code."""
    found = inspect(conn)
    if found.version == 0:
        raise SchemaError(f"{found.path} is empty: not a statusdash database")
    if found.code:
        raise SchemaError(
            f"{found.path} has {', '.join(found.code)}: statusdash databases have no triggers"
            " or views, and a restored file must not run code"
        )
    return found
