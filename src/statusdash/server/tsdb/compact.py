"""Compaction: head rows of closed windows become per-host chunks, with their 1m and 1h tiers.

For each (host, raw window) with head rows whose window closed ``grace`` ago, one ``BEGIN
IMMEDIATE`` transaction: decode the window's raw chunk (if any: late data), merge the head rows,
write the chunk back, recompute every 1-minute and 1-hour bucket of the window from that merged
raw data, write them into the tier chunks, and delete the head rows. A crash anywhere rolls the
whole step back, so nothing is lost or counted twice, and late data corrects the tiers exactly
(the buckets are recomputed, not incremented). A window older than the raw tier's prune cutoff
has no raw chunk any more; its late rows are merged into the tier buckets by adding (exact too:
each head row is folded once, in the transaction that deletes it).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from statusdash.server.rollup_models import cutoff_key
from statusdash.server.rollups import state, write_txn
from statusdash.server.tsdb.codec import decode_chunk, encode_chunk

RAW = "raw"
MIN_PER_DAY = 86_400_000


@dataclass(frozen=True)
class ChunkTier:
    """A rollup tier kept as chunks: bucket width and chunk window, in ms."""

    name: str
    step: int
    span: int


TIER_1M = ChunkTier("1m", 60_000, 6 * 3_600_000)
TIER_1H = ChunkTier("1h", 3_600_000, 7 * MIN_PER_DAY)
TIERS = (TIER_1M, TIER_1H)
MAX_SPAN = {RAW: MIN_PER_DAY, TIER_1M.name: TIER_1M.span, TIER_1H.name: TIER_1H.span}
PAUSE_S = 0.02
Stop = Callable[[], bool]
_decode_head = msgspec.msgpack.Decoder(list[int]).decode
Agg = list[int]  # [min, max, sum, count]


def col(sid: int, k: int) -> int:
    """The codec column of a tier chunk: series ``sid``, k = 0 min, 1 max, 2 sum, 3 count."""
    return 4 * sid + k


@dataclass
class CompactResult:
    windows: int = 0
    rows: int = 0
    transactions: int = 0
    max_txn_ms: float = 0.0
    late: int = 0  # windows that already had a chunk


@dataclass
class ChunkPrune:
    deleted: dict[str, int] = field(default_factory=lambda: {RAW: 0, "1m": 0, "1h": 0})


def _never() -> bool:
    return False


def check_span(span_s: int) -> int:
    """The raw chunk window in ms; it must divide a day into whole hours."""
    if span_s <= 0 or span_s % 3600 or 86400 % span_s:
        raise ValueError(f"tsdb chunk span {span_s} s must be whole hours dividing a day")
    return span_s * 1000


def compact(
    conn: sqlite3.Connection,
    span_s: int = 3600,
    *,
    grace_s: float = 30.0,
    now: float | None = None,
    pause_s: float = PAUSE_S,
    stop: Stop = _never,
) -> CompactResult:
    """Compact every head window that closed ``grace_s`` before ``now``."""
    span = check_span(span_s)
    now = time.time() if now is None else now
    closed = int((now - grace_s) * 1000) // span * span
    res = CompactResult()
    todo = conn.execute(
        "SELECT DISTINCT host_id, ts / ? * ? FROM series_head WHERE ts < ? ORDER BY 1, 2",
        (span, span, closed),
    ).fetchall()
    for host_id, ws in todo:
        if stop():
            break
        t0 = time.perf_counter()
        with write_txn(conn):
            raw_cut = state(conn).get(cutoff_key(RAW))
            # the window's raw chunk is gone (pruned whole) once its end is past the cutoff
            additive = raw_cut is not None and ws + span <= raw_cut * 1000
            n, late = compact_window(conn, int(host_id), int(ws), span, additive=additive)
        res.transactions += 1
        res.windows += 1
        res.rows += n
        res.late += late
        res.max_txn_ms = max(res.max_txn_ms, (time.perf_counter() - t0) * 1000)
        time.sleep(pause_s)
    return res


def compact_window(
    conn: sqlite3.Connection, host_id: int, ws: int, span: int, *, additive: bool = False
) -> tuple[int, bool]:
    """One window of one host, inside the caller's transaction; (head rows, had a chunk)."""
    we = ws + span
    head = conn.execute(
        "SELECT ts, data FROM series_head WHERE host_id = ? AND ts >= ? AND ts < ? ORDER BY ts, id",
        (host_id, ws, we),
    ).fetchall()
    rows: dict[int, dict[int, int]] = {}
    old = _chunk(conn, host_id, RAW, ws)
    if old is not None and not additive:
        ts, cols = decode_chunk(old[1])
        for i, t in enumerate(ts):
            rows[t] = {sid: v for sid, c in cols.items() if (v := c[i]) is not None}
    fresh: dict[int, dict[int, int]] = {}
    for t, blob in head:
        flat = _decode_head(blob)
        row = fresh.setdefault(int(t), {})
        row.update(zip(flat[::2], flat[1::2], strict=True))
    for t, row in fresh.items():  # a report at a time already stored: its values win
        rows.setdefault(t, {}).update(row)
    if not additive:
        _put(conn, host_id, RAW, ws, we, _encode_raw(rows))
    for tier in TIERS:
        buckets = _aggregate(fresh if additive else rows, tier.step)
        _write_tier(conn, host_id, tier, ws, we, buckets, additive)
    conn.execute(
        "DELETE FROM series_head WHERE host_id = ? AND ts >= ? AND ts < ?", (host_id, ws, we)
    )
    return len(head), old is not None


def _encode_raw(rows: dict[int, dict[int, int]]) -> tuple[int, bytes] | None:
    if not rows:
        return None
    ts = sorted(rows)
    sids = sorted({sid for r in rows.values() for sid in r})
    cols = {sid: [rows[t].get(sid) for t in ts] for sid in sids}
    return len(ts), encode_chunk(ts, cols)


def _aggregate(rows: dict[int, dict[int, int]], step: int) -> dict[int, dict[int, Agg]]:
    """bucket start -> series id -> [min, max, sum, count]."""
    out: dict[int, dict[int, Agg]] = {}
    for t, row in rows.items():
        bucket = out.setdefault(t // step * step, {})
        for sid, v in row.items():
            a = bucket.get(sid)
            if a is None:
                bucket[sid] = [v, v, v, 1]
            else:
                a[0], a[1], a[2], a[3] = min(a[0], v), max(a[1], v), a[2] + v, a[3] + 1
    return out


def _write_tier(
    conn: sqlite3.Connection,
    host_id: int,
    tier: ChunkTier,
    ws: int,
    we: int,
    buckets: dict[int, dict[int, Agg]],
    additive: bool,
) -> None:
    """Replace (or, ``additive``, merge into) the tier's buckets in [ws, we)."""
    first = ws // tier.span * tier.span
    for cs in range(first, we, tier.span):
        ce = cs + tier.span
        mine = {b: v for b, v in buckets.items() if cs <= b < ce}
        old = _chunk(conn, host_id, tier.name, cs)
        if old is None and not mine:
            continue
        table = {} if old is None else _decode_tier(old[1])
        if not additive:  # the window's buckets are recomputed from its raw rows
            for b in [b for b in table if ws <= b < we]:
                del table[b]
        for b, series in mine.items():
            have = table.setdefault(b, {})
            for sid, a in series.items():
                h = have.get(sid)
                have[sid] = (
                    a if h is None else [min(h[0], a[0]), max(h[1], a[1]), h[2] + a[2], h[3] + a[3]]
                )
        _put(conn, host_id, tier.name, cs, ce, _encode_tier(table))


def _decode_tier(blob: bytes) -> dict[int, dict[int, Agg]]:
    ts, cols = decode_chunk(blob)
    sids = sorted({c // 4 for c in cols})
    out: dict[int, dict[int, Agg]] = {}
    for i, t in enumerate(ts):
        row: dict[int, Agg] = {}
        for sid in sids:
            n = cols[col(sid, 3)][i]
            if n:
                row[sid] = [cols[col(sid, k)][i] or 0 for k in range(3)] + [n]
        out[t] = row
    return out


def _encode_tier(table: dict[int, dict[int, Agg]]) -> tuple[int, bytes] | None:
    ts = sorted(b for b, row in table.items() if row)
    if not ts:
        return None
    sids = sorted({sid for b in ts for sid in table[b]})
    cols: dict[int, list[int | None]] = {}
    for sid in sids:
        aggs = [table[b].get(sid) for b in ts]
        for k in range(4):
            cols[col(sid, k)] = [None if a is None else a[k] for a in aggs]
    return len(ts), encode_chunk(ts, cols)


def _chunk(
    conn: sqlite3.Connection, host_id: int, tier: str, start: int
) -> tuple[int, bytes] | None:
    row = conn.execute(
        "SELECT id, data FROM series_chunks WHERE host_id = ? AND tier = ? AND start = ?",
        (host_id, tier, start),
    ).fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]))


def _put(
    conn: sqlite3.Connection,
    host_id: int,
    tier: str,
    start: int,
    stop: int,
    chunk: tuple[int, bytes] | None,
) -> None:
    if chunk is None:
        conn.execute(
            "DELETE FROM series_chunks WHERE host_id = ? AND tier = ? AND start = ?",
            (host_id, tier, start),
        )
        return
    conn.execute(
        "INSERT INTO series_chunks (host_id, tier, start, stop, rows, data)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host_id, tier, start)"
        " DO UPDATE SET stop = excluded.stop, rows = excluded.rows, data = excluded.data",
        (host_id, tier, start, stop, chunk[0], chunk[1]),
    )


def prune_chunks(conn: sqlite3.Connection, cutoffs: dict[str, float]) -> ChunkPrune:
    """Delete the chunks wholly before their tier's cutoff (epoch s, as ``rollups.prune``)."""
    res = ChunkPrune()
    for tier, cut in cutoffs.items():
        with write_txn(conn):
            res.deleted[tier] = conn.execute(
                "DELETE FROM series_chunks WHERE tier = ? AND stop <= ?", (tier, int(cut * 1000))
            ).rowcount
    return res
