"""The raw tier's insert: one row per report in ``samples`` and a copy in ``samples_pending``.

Shared by the storage writer (``server/storage.py``) and anything that bulk-loads samples (the
history benchmark, tests). The columns and their integer scales come from the metric catalogue.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from statusdash.server.models import METRIC_COLUMNS, SCALES, stored_sql
from statusdash.server.rollups import last_id

_COLUMNS = list(METRIC_COLUMNS.values())
# Both statements take the same row: (id, host_id, ts, report_id, *values as sent). The values
# are scaled to integers in SQL, so the writer thread does it without holding the GIL.
_VALUES = ", ".join(stored_sql(f"?{i}", SCALES[c]) for i, c in enumerate(_COLUMNS, start=5))
# Column names are ours; every value is bound.
_INSERT = (
    f"INSERT INTO samples (id, host_id, ts, report_id, {', '.join(_COLUMNS)})"  # noqa: S608
    f" VALUES (?1, ?2, ?3, ?4, {_VALUES})"
)
_INSERT_PENDING = (
    f"INSERT INTO samples_pending (id, host_id, ts, {', '.join(_COLUMNS)})"  # noqa: S608
    f" VALUES (?1, ?2, ?3, {_VALUES})"
)


def insert_samples(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert raw rows ``(host_id, ts, report_id, *values)``, values as sent (floats or None).

    Call inside a write transaction. Each row also goes to ``samples_pending`` for the rollup
    job; its arrival id comes from that table's ``AUTOINCREMENT`` sequence, so it is never reused.
    """
    first = next_id(conn)
    insert_rows(conn, [(first + i, *r) for i, r in enumerate(rows)])


def next_id(conn: sqlite3.Connection) -> int:
    """The arrival id the next raw row gets (inside the write transaction that inserts it)."""
    return last_id(conn) + 1


def insert_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows ``(id, host_id, ts, report_id, *values)`` whose arrival ids are already set."""
    conn.executemany(_INSERT, rows)
    conn.executemany(_INSERT_PENDING, rows)
