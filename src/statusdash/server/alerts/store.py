"""Persistence of alerts, silences, service health and failed notifications.

All writes go through one thread with its own SQLite connection, so they never block the event
loop and keep their order. Callers pass plain values captured on the loop, never live objects.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from statusdash.schema import AlertState
from statusdash.server.alerts import models  # noqa: F401  (registers the tables)
from statusdash.server.alerts.engine import Alert
from statusdash.server.db import connect, ensure_schema

T = TypeVar("T")
# One write of a batch: (the caller's key for the alert, its id if known, its row or None to
# delete it); a key saved twice in a batch is inserted once, then updated.
Op = tuple[int, int | None, tuple[Any, ...] | None]

_ALERT_COLS = (
    "rule, host, subject, state, severity, value, threshold, message, started_at, fired_at,"
    " resolved_at, acked_at, acked_by, notified_firing, notified_resolved, resolved_by,"
    " resolved_reason"
)
_SELECT_ALERT = f"SELECT id, {_ALERT_COLS} FROM alerts"  # noqa: S608


def ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def alert_row(a: Alert) -> tuple[Any, ...]:
    """The columns of ``a`` (in ``_ALERT_COLS`` order), captured now."""
    return (
        a.rule,
        a.host,
        a.subject,
        a.state.value,
        a.severity,
        a.value,
        a.threshold,
        a.message[:2000],
        ts(a.started_at),
        ts(a.fired_at),
        ts(a.resolved_at),
        ts(a.acked_at),
        a.acked_by,
        a.notified_firing,
        a.notified_resolved,
        a.resolved_by,
        None if a.resolved_reason is None else a.resolved_reason[:500],
    )


def _alert(row: Sequence[Any]) -> Alert:
    started = dt(row[9])
    assert started is not None
    return Alert(
        id=row[0],
        rule=row[1],
        host=row[2],
        subject=row[3],
        state=AlertState(row[4]),
        severity=row[5],
        value=row[6],
        threshold=row[7],
        message=row[8],
        started_at=started,
        fired_at=dt(row[10]),
        resolved_at=dt(row[11]),
        acked_at=dt(row[12]),
        acked_by=row[13],
        notified_firing=bool(row[14]),
        notified_resolved=bool(row[15]),
        resolved_by=row[16],
        resolved_reason=row[17],
    )


@dataclass(frozen=True)
class Silence:
    id: int
    host: str | None
    rule: str | None
    subject: str | None
    created_at: datetime
    expires_at: datetime
    created_by: str
    comment: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "rule": self.rule,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "created_by": self.created_by,
            "comment": self.comment,
        }


@dataclass(frozen=True)
class ServiceRecord:
    host: str
    name: str
    status: str
    checked_at: datetime | None
    received_at: datetime
    expected_s: float
    metrics: dict[str, Any]
    error: str | None


class AlertStore:
    """The alerting tables, written from one thread; ``call`` runs a method there."""

    def __init__(self, db_path: Path, synchronous: str = "FULL") -> None:
        self.db_path = db_path
        self.synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts-db")
        self._conn: sqlite3.Connection | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    def open(self) -> None:
        ensure_schema(self.db_path)
        self._conn = connect(self.db_path, self.synchronous)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        await self.call(self.close)
        self._executor.shutdown(wait=True)

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "store not open"
        return self._conn

    # --- alerts ----------------------------------------------------------------------------------
    def load_open(self) -> list[Alert]:
        rows = self.conn.execute(
            f"{_SELECT_ALERT} WHERE state IN ('pending', 'firing') ORDER BY id"
        ).fetchall()
        return [_alert(r) for r in rows]

    def load_unnotified_resolved(self) -> list[Alert]:
        rows = self.conn.execute(
            f"{_SELECT_ALERT} WHERE state = 'resolved' AND notified_firing AND NOT"
            " notified_resolved ORDER BY id"
        ).fetchall()
        return [_alert(r) for r in rows]

    def save(self, alert_id: int | None, row: tuple[Any, ...]) -> int:
        """Insert (no id yet) or update an alert; returns its id."""
        if alert_id is None:
            marks = ", ".join("?" * len(row))
            sql = f"INSERT INTO alerts ({_ALERT_COLS}) VALUES ({marks})"  # noqa: S608
            cur = self.conn.execute(sql, row)
            return int(cur.lastrowid or 0)
        sets = ", ".join(f"{c.strip()} = ?" for c in _ALERT_COLS.split(","))
        self.conn.execute(f"UPDATE alerts SET {sets} WHERE id = ?", (*row, alert_id))  # noqa: S608
        return alert_id

    def apply(self, ops: list[Op]) -> dict[int, int]:
        """Save or delete each alert of ``ops`` in one transaction; each saved key's id."""
        ids: dict[int, int] = {}
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for key, alert_id, row in ops:
                known = alert_id if alert_id is not None else ids.get(key)
                if row is not None:
                    ids[key] = self.save(known, row)
                elif known is not None:
                    self.delete(known)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return ids

    def delete(self, alert_id: int) -> None:
        self.conn.execute("DELETE FROM alerts WHERE id = ?", (alert_id,))

    def mark_notified(self, alert_id: int, column: str) -> None:
        assert column in ("notified_firing", "notified_resolved")
        self.conn.execute(f"UPDATE alerts SET {column} = 1 WHERE id = ?", (alert_id,))  # noqa: S608

    def get(self, alert_id: int) -> Alert | None:
        row = self.conn.execute(f"{_SELECT_ALERT} WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else _alert(row)

    def resolved(self, limit: int) -> list[Alert]:
        rows = self.conn.execute(
            f"{_SELECT_ALERT} WHERE state = 'resolved' ORDER BY resolved_at DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_alert(r) for r in rows]

    def prune(self, before: datetime) -> None:
        """Forget resolved alerts, expired silences and failures older than ``before``."""
        t = before.timestamp()
        self.conn.execute("DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ?", (t,))
        self.conn.execute("DELETE FROM alert_silences WHERE expires_at < ?", (t,))
        self.conn.execute("DELETE FROM notification_failures WHERE at < ?", (t,))

    # --- silences --------------------------------------------------------------------------------
    def add_silence(
        self,
        host: str | None,
        rule: str | None,
        subject: str | None,
        created: datetime,
        expires: datetime,
        by: str,
        comment: str,
    ) -> Silence:
        cur = self.conn.execute(
            "INSERT INTO alert_silences (host, rule, subject, created_at, expires_at, created_by,"
            " comment) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (host, rule, subject, created.timestamp(), expires.timestamp(), by, comment),
        )
        return Silence(int(cur.lastrowid or 0), host, rule, subject, created, expires, by, comment)

    def end_silence(self, silence_id: int, now: datetime) -> bool:
        """Make a silence in force expire ``now`` (kept until pruned); False if none is."""
        cur = self.conn.execute(
            "UPDATE alert_silences SET expires_at = ? WHERE id = ? AND expires_at > ?",
            (now.timestamp(), silence_id, now.timestamp()),
        )
        return cur.rowcount > 0

    def silences(self, since: datetime) -> list[Silence]:
        """Silences that expire after ``since``."""
        rows = self.conn.execute(
            "SELECT id, host, rule, subject, created_at, expires_at, created_by, comment"
            " FROM alert_silences WHERE expires_at > ? ORDER BY expires_at",
            (since.timestamp(),),
        ).fetchall()
        return [Silence(r[0], r[1], r[2], r[3], _utc(r[4]), _utc(r[5]), r[6], r[7]) for r in rows]

    # --- service health --------------------------------------------------------------------------
    def save_services(self, recs: list[ServiceRecord]) -> None:
        """Upsert the latest record of each service, in one transaction."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for rec in recs:
                self._save_service(rec)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _save_service(self, rec: ServiceRecord) -> None:
        self.conn.execute(
            "INSERT INTO service_health (host, name, status, checked_at, received_at, expected_s,"
            " metrics, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host, name) DO UPDATE"
            " SET status = excluded.status, checked_at = excluded.checked_at,"
            " received_at = excluded.received_at, expected_s = excluded.expected_s,"
            " metrics = excluded.metrics, error = excluded.error",
            (
                rec.host,
                rec.name,
                rec.status,
                ts(rec.checked_at),
                rec.received_at.timestamp(),
                rec.expected_s,
                json.dumps(rec.metrics),
                rec.error,
            ),
        )

    def delete_services(self, host: str, names: list[str] | None = None) -> None:
        """Forget ``names`` of ``host`` (all of its services when None)."""
        if names is None:
            self.conn.execute("DELETE FROM service_health WHERE host = ?", (host,))
            return
        self.conn.executemany(
            "DELETE FROM service_health WHERE host = ? AND name = ?", [(host, n) for n in names]
        )

    def load_services(self) -> list[ServiceRecord]:
        rows = self.conn.execute(
            "SELECT host, name, status, checked_at, received_at, expected_s, metrics, error"
            " FROM service_health ORDER BY host, name"
        ).fetchall()
        out = []
        for r in rows:
            try:
                metrics = json.loads(r[6])
            except ValueError:
                metrics = {}
            out.append(ServiceRecord(r[0], r[1], r[2], dt(r[3]), _utc(r[4]), r[5], metrics, r[7]))
        return out

    # --- failed notifications --------------------------------------------------------------------
    def record_failure(
        self,
        at: datetime,
        target: str,
        fmt: str,
        event: str,
        alert_id: int | None,
        attempts: int,
        error: str,
    ) -> None:
        self.conn.execute(
            "INSERT INTO notification_failures (at, target, format, event, alert_id, attempts,"
            " error) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (at.timestamp(), target[:255], fmt, event, alert_id, attempts, error[:1000]),
        )

    def failures(self, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, at, target, format, event, alert_id, attempts, error"
            " FROM notification_failures ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "id": r[0],
                "at": _utc(r[1]).isoformat(),
                "target": r[2],
                "format": r[3],
                "event": r[4],
                "alert_id": r[5],
                "attempts": r[6],
                "error": r[7],
            }
            for r in rows
        ]


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
