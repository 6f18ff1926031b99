"""Rolling raw samples up into the 1-minute and 1-hour tiers, and pruning every tier.

Both run on their own connection in small ``BEGIN IMMEDIATE`` transactions with a pause between
them, so the storage writer (which waits on ``busy_timeout``) gets the lock within milliseconds.
The rollup reads the raw rows waiting in ``samples_pending`` (in arrival-id order, past a watermark
kept in ``history_state``), upserts their aggregates into both tiers and deletes them from the
queue in the same transaction as the watermark moves, so a late report simply merges into the
buckets it belongs to, exactly once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from statusdash.server.rollup_models import (
    COLUMNS,
    HOUR,
    MINUTE,
    ROLLUP_ID,
    TIERS,
    Tier,
    cutoff_key,
)
from statusdash.settings import Settings

ROLLUP_BATCH = 1000  # raw rows per transaction: ~15 ms of write lock at most
PRUNE_BATCH = 500  # raw deletes touch three B-trees: ~10-15 ms of lock
PAUSE_S = 0.02  # between our transactions, so a waiting writer always gets a turn
CHECKPOINT_EVERY_S = 300.0
Stop = Callable[[], bool]


@dataclass(frozen=True)
class Retention:
    """How long each tier keeps data, in seconds, and the replay window of raw rows.

    No defaults here: they are the settings' (``from_settings``), in one place.
    """

    raw_s: float
    minute_s: float
    hour_s: float
    # A raw row stays at least this long after it arrived, so a replayed report is still seen
    # as a duplicate by ingest and cannot be counted twice in the rollups.
    replay_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            raw_s=settings.raw_retention_hours * 3600,
            minute_s=settings.retention_days * 86400.0,
            hour_s=settings.hourly_retention_days * 86400.0,
            replay_s=settings.replay_window_hours * 3600,
        )


@dataclass
class RollupResult:
    rows: int = 0
    transactions: int = 0
    watermark: int = 0
    max_txn_ms: float = 0.0


@dataclass
class PruneResult:
    deleted: dict[str, int] = field(default_factory=lambda: {"raw": 0, "1m": 0, "1h": 0})
    cutoffs: dict[str, float] = field(default_factory=dict)
    transactions: int = 0
    max_txn_ms: float = 0.0


def _never() -> bool:
    return False


@contextmanager
def write_txn(conn: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction: the write lock up front, never an upgrade deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def state(conn: sqlite3.Connection) -> dict[str, float]:
    return {str(k): float(v) for k, v in conn.execute("SELECT name, value FROM history_state")}


def _set_state(conn: sqlite3.Connection, name: str, value: float) -> None:
    conn.execute(
        "INSERT INTO history_state (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


# --- SQL -----------------------------------------------------------------------------------------
def _upsert_sql(tier: Tier) -> str:
    names = ["host_id", "t", "n"]
    # The values are integers already (models.SCALES), so the sums are exact.
    values = ["host_id", f"CAST(ts / {tier.step} AS INTEGER) * {tier.step} AS bt", "count(*)"]
    updates = ["n = n + excluded.n"]
    for c in COLUMNS:
        names += [f"{c}_sum", f"{c}_min", f"{c}_max", f"{c}_n"]
        values += [
            f"sum({c})",
            f"min({c})",
            f"max({c})",
            f"CASE WHEN count({c}) = count(*) THEN NULL ELSE count({c}) END",
        ]
        cnt = f"coalesce({c}_n, n) + coalesce(excluded.{c}_n, excluded.n)"
        updates += [
            f"{c}_sum = coalesce({c}_sum + excluded.{c}_sum, {c}_sum, excluded.{c}_sum)",
            f"{c}_min = coalesce(min({c}_min, excluded.{c}_min), {c}_min, excluded.{c}_min)",
            f"{c}_max = coalesce(max({c}_max, excluded.{c}_max), {c}_max, excluded.{c}_max)",
            f"{c}_n = CASE WHEN {cnt} = n + excluded.n THEN NULL ELSE {cnt} END",
        ]
    # Every name in here is ours; the bounds are bound parameters.
    return (
        f"INSERT INTO {tier.table} ({', '.join(names)}) SELECT {', '.join(values)}"  # noqa: S608
        " FROM samples_pending WHERE id > ? AND id <= ? GROUP BY host_id, bt"
        f" ON CONFLICT (host_id, t) DO UPDATE SET {', '.join(updates)}"
    )


_UPSERTS = {tier.name: _upsert_sql(tier) for tier in TIERS}


# --- rollup ------------------------------------------------------------------------------------
def roll_up(
    conn: sqlite3.Connection,
    *,
    batch: int = ROLLUP_BATCH,
    pause_s: float = PAUSE_S,
    now: float | None = None,
    stop: Stop = _never,
) -> RollupResult:
    """Fold every pending raw row into both tiers; returns what it did."""
    res = RollupResult()
    arrived_by = now if now is not None else time.time()
    newest = last_id(conn)
    while not stop():
        t0 = time.perf_counter()
        with write_txn(conn):
            mark = int(state(conn).get(ROLLUP_ID, 0))
            hi = conn.execute(
                "SELECT max(id), count(*) FROM (SELECT id FROM samples_pending WHERE id > ?"
                " ORDER BY id LIMIT ?)",
                (mark, batch),
            ).fetchone()
            if hi[0] is not None:
                for tier in TIERS:
                    conn.execute(_UPSERTS[tier.name], (mark, hi[0]))
                conn.execute("DELETE FROM samples_pending WHERE id <= ?", (hi[0],))
                _set_state(conn, ROLLUP_ID, hi[0])
                mark = int(hi[0])
            _checkpoint(conn, arrived_by, int(newest))
        res.transactions += 1
        res.max_txn_ms = max(res.max_txn_ms, (time.perf_counter() - t0) * 1000)
        res.watermark = mark
        if hi[0] is None:
            break
        res.rows += int(hi[1])
        if hi[1] < batch:
            break
        time.sleep(pause_s)
    return res


def _checkpoint(conn: sqlite3.Connection, at: float, max_id: int) -> None:
    last = conn.execute("SELECT max(at) FROM rollup_checkpoints").fetchone()[0]
    if last is None or at - last >= CHECKPOINT_EVERY_S:
        conn.execute(
            "INSERT OR REPLACE INTO rollup_checkpoints (at, max_id) VALUES (?, ?)", (at, max_id)
        )


def last_id(conn: sqlite3.Connection) -> int:
    """The newest arrival id issued to a raw row (0 before the first)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'samples_pending'").fetchone()
    return int(row[0]) if row else 0


def lag(conn: sqlite3.Connection) -> int:
    """Raw rows not yet in the tiers."""
    return int(conn.execute("SELECT count(*) FROM samples_pending").fetchone()[0])


# --- retention ---------------------------------------------------------------------------------
def prune(
    conn: sqlite3.Connection,
    retention: Retention,
    *,
    now: float | None = None,
    batch: int = PRUNE_BATCH,
    pause_s: float = PAUSE_S,
    stop: Stop = _never,
) -> PruneResult:
    """Delete what is past each tier's retention, host by host, in small transactions.

    Raw rows go when ``ts`` < now - raw retention, except rows not rolled up yet and rows that
    arrived within the replay window (both by arrival id).
    A rollup row goes when its whole bucket is before its tier's cutoff.
    """
    now = time.time() if now is None else now
    res = PruneResult()
    hosts = [int(r[0]) for r in conn.execute("SELECT id FROM hosts ORDER BY id")]
    st = state(conn)
    safe = int(st.get(ROLLUP_ID, 0))
    if retention.replay_s > 0:
        row = conn.execute(
            "SELECT max_id FROM rollup_checkpoints WHERE at <= ? ORDER BY at DESC LIMIT 1",
            (now - retention.replay_s,),
        ).fetchone()
        safe = min(safe, int(row[0]) if row else 0)
    res.cutoffs = {"raw": now - retention.raw_s, MINUTE.name: now - retention.minute_s}
    res.cutoffs[HOUR.name] = now - retention.hour_s
    # Cutoffs first: from here on, history no longer trusts a tier before its cutoff.
    with write_txn(conn):
        for name, cut in res.cutoffs.items():
            _set_state(conn, cutoff_key(name), max(cut, st.get(cutoff_key(name), cut)))
    raw_sql = (
        "DELETE FROM samples WHERE (host_id, ts, report_id) IN (SELECT host_id, ts, report_id"
        " FROM samples WHERE host_id = ? AND ts < ? AND id <= ? LIMIT ?)"
    )
    for host in hosts:
        while not stop():
            n = _delete(conn, res, raw_sql, (host, res.cutoffs["raw"], safe, batch))
            res.deleted["raw"] += n
            if n < batch:
                break
            time.sleep(pause_s)
    for tier in (MINUTE, HOUR):
        for host in hosts:
            res.deleted[tier.name] += _prune_tier(conn, res, tier, host, batch, pause_s, stop)
    if retention.replay_s > 0 and not stop():
        with write_txn(conn):  # keep the newest checkpoint old enough to be used
            conn.execute(
                "DELETE FROM rollup_checkpoints WHERE at < (SELECT max(at) FROM"
                " rollup_checkpoints WHERE at <= ?)",
                (now - retention.replay_s,),
            )
    return res


def _delete(conn: sqlite3.Connection, res: PruneResult, sql: str, params: tuple[float, ...]) -> int:
    t0 = time.perf_counter()
    with write_txn(conn):
        n = conn.execute(sql, params).rowcount
    res.transactions += 1
    res.max_txn_ms = max(res.max_txn_ms, (time.perf_counter() - t0) * 1000)
    return n


def _prune_tier(
    conn: sqlite3.Connection,
    res: PruneResult,
    tier: Tier,
    host: int,
    batch: int,
    pause_s: float,
    stop: Stop,
) -> int:
    """Delete the host's buckets that end at or before the cutoff, ``batch`` at a time."""
    last = res.cutoffs[tier.name] - tier.step  # [t, t + step) is wholly past when t <= last
    first = conn.execute(
        f"SELECT min(t) FROM {tier.table} WHERE host_id = ?",  # noqa: S608
        (host,),
    ).fetchone()[0]
    sql = f"DELETE FROM {tier.table} WHERE host_id = ? AND t <= ?"  # noqa: S608
    deleted = 0
    while first is not None and first <= last and not stop():
        upper = min(last, first + (batch - 1) * tier.step)
        deleted += _delete(conn, res, sql, (host, upper))
        first = upper + tier.step
        if first <= last:
            time.sleep(pause_s)
    return deleted
