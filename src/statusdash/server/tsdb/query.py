"""Reading labelled series: the registry (``host_series``) and bucketed history (``read_series``).

``read_series`` answers like ``history.query``: the coarsest tier whose step fits a bucket (and
that reaches back to ``start`` past its prune cutoff), read from the chunks, plus the head rows
compaction has not moved yet, in one read transaction, so an answer is always complete.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from statusdash import catalog
from statusdash.schema import HistoryPoint
from statusdash.server.history import choose_tier
from statusdash.server.rollups import state
from statusdash.server.tsdb.codec import decode_chunk
from statusdash.server.tsdb.compact import MAX_SPAN, RAW, TIER_1H, TIER_1M, col

_decode_head = msgspec.msgpack.Decoder(list[int]).decode
Acc = dict[int, dict[int, list[float]]]  # series id -> bucket -> [sum, min, max, count]


@dataclass(frozen=True)
class SeriesRef:
    """One labelled series of a host, as the registry knows it."""

    id: int
    metric: str
    labels: Mapping[str, str]
    unit: str
    first: datetime
    last: datetime


def host_series(
    conn: sqlite3.Connection, host_id: int, metric: str | None = None
) -> list[SeriesRef]:
    """Every labelled series of a host (of one metric if given), by metric then labels."""
    sql = "SELECT id, metric, labels, first, last FROM series WHERE host_id = ?"
    args: tuple[object, ...] = (host_id,)
    if metric is not None:
        sql += " AND metric = ?"
        args += (metric,)
    units = {m.name: m.unit for m in catalog.LABELLED}
    out = [
        SeriesRef(
            id=int(sid),
            metric=str(name),
            labels={str(k): str(v) for k, v in json.loads(labels).items()},
            unit=units.get(name, ""),
            first=datetime.fromtimestamp(first, UTC),
            last=datetime.fromtimestamp(last, UTC),
        )
        for sid, name, labels, first, last in conn.execute(sql, args)
    ]
    out.sort(key=lambda r: (r.metric, sorted(r.labels.items())))
    return out


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def read_series(
    conn: sqlite3.Connection,
    refs: Sequence[SeriesRef],
    start: datetime,
    end: datetime,
    points: int,
) -> dict[int, list[HistoryPoint]]:
    """Per series id, its points over [start, end) in ``points`` buckets (empty ones left out)."""
    if not refs:
        return {}
    t0, t1 = start.timestamp(), end.timestamp()
    bucket = (t1 - t0) / points
    scales = {m.name: m.scale for m in catalog.LABELLED}
    acc: Acc = {r.id: {} for r in refs}
    with _snapshot(conn):
        tier = choose_tier(t0, t1, points, state(conn))
        marks = ",".join("?" * len(acc))
        hosts: dict[int, set[int]] = {}
        for sid, host_id in conn.execute(
            f"SELECT id, host_id FROM series WHERE id IN ({marks})",  # noqa: S608
            list(acc),
        ):
            hosts.setdefault(int(host_id), set()).add(int(sid))
        for host_id, sids in hosts.items():
            if tier == RAW:
                _raw(conn, host_id, sids, t0, t1, bucket, acc)
            else:
                _tier(conn, host_id, sids, tier, t0, t1, bucket, acc)
    out: dict[int, list[HistoryPoint]] = {}
    for r in refs:
        scale = scales.get(r.metric, 1)
        out[r.id] = [
            HistoryPoint(
                t=datetime.fromtimestamp(t0 + b * bucket, UTC),
                avg=s / n / scale,
                min=lo / scale,
                max=hi / scale,
                count=int(n),
            )
            for b, (s, lo, hi, n) in sorted(acc[r.id].items())
            if 0 <= b < points and n
        ]
    return out


def _chunks(
    conn: sqlite3.Connection, host_id: int, tier: str, lo_ms: int, hi_ms: int
) -> list[bytes]:
    rows = conn.execute(
        "SELECT data FROM series_chunks WHERE host_id = ? AND tier = ? AND start > ?"
        " AND start < ? AND stop > ? ORDER BY start",
        (host_id, tier, lo_ms - MAX_SPAN[tier], hi_ms, lo_ms),
    )
    return [bytes(r[0]) for r in rows]


def _head(
    conn: sqlite3.Connection, host_id: int, sids: set[int], lo_ms: int, hi_ms: int
) -> Iterator[tuple[int, int, int]]:
    """(ts ms, series id, value) of the head rows in [lo_ms, hi_ms) for ``sids``."""
    for ts, blob in conn.execute(
        "SELECT ts, data FROM series_head WHERE host_id = ? AND ts >= ? AND ts < ?",
        (host_id, lo_ms, hi_ms),
    ):
        flat = _decode_head(blob)
        for sid, v in zip(flat[::2], flat[1::2], strict=True):
            if sid in sids:
                yield ts, sid, v


def _add(acc: Acc, sid: int, b: int, s: float, lo: float, hi: float, n: float) -> None:
    cell = acc[sid].get(b)
    if cell is None:
        acc[sid][b] = [s, lo, hi, n]
    else:
        cell[0] += s
        cell[1] = min(cell[1], lo)
        cell[2] = max(cell[2], hi)
        cell[3] += n


def _raw(
    conn: sqlite3.Connection,
    host_id: int,
    sids: set[int],
    t0: float,
    t1: float,
    bucket: float,
    acc: Acc,
) -> None:
    lo_ms, hi_ms = math.ceil(t0 * 1000), math.ceil(t1 * 1000)
    for blob in _chunks(conn, host_id, RAW, lo_ms, hi_ms):
        ts, cols = decode_chunk(blob, want=sids)
        for sid, values in cols.items():
            for t, v in zip(ts, values, strict=True):
                if v is not None and lo_ms <= t < hi_ms:
                    _add(acc, sid, int((t / 1000 - t0) / bucket), v, v, v, 1)
    for t, sid, v in _head(conn, host_id, sids, lo_ms, hi_ms):
        _add(acc, sid, int((t / 1000 - t0) / bucket), v, v, v, 1)


def _tier(
    conn: sqlite3.Connection,
    host_id: int,
    sids: set[int],
    name: str,
    t0: float,
    t1: float,
    bucket: float,
    acc: Acc,
) -> None:
    """A rollup bucket counts in the answer's bucket its start falls in; the range is taken in
    whole tier steps from the first step boundary at or after ``start`` (as ``history``)."""
    step = TIER_1M.step if name == TIER_1M.name else TIER_1H.step
    lo_ms = math.ceil(t0 * 1000 / step) * step
    hi_ms = math.ceil(t1 * 1000 / step) * step
    want = {col(sid, k) for sid in sids for k in range(4)}
    for blob in _chunks(conn, host_id, name, lo_ms, hi_ms):
        ts, cols = decode_chunk(blob, want=want)
        for sid in sids:
            counts = cols.get(col(sid, 3))
            if counts is None:
                continue
            mins, maxs, sums = cols[col(sid, 0)], cols[col(sid, 1)], cols[col(sid, 2)]
            for i, t in enumerate(ts):
                n = counts[i]
                if n and lo_ms <= t < hi_ms:
                    b = int((t / 1000 - t0) / bucket)
                    _add(acc, sid, b, sums[i] or 0, mins[i] or 0, maxs[i] or 0, n)
    for t, sid, v in _head(conn, host_id, sids, lo_ms, hi_ms):
        _add(acc, sid, int((t // step * step / 1000 - t0) / bucket), v, v, v, 1)
