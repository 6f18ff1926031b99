"""History queries: a time range of one metric of one host, downsampled into buckets.

``query`` reads the coarsest tier (raw, 1-minute, 1-hour rollups) whose resolution still fills
every requested bucket, adding the raw rows the rollup job has not folded in yet, so an answer
is always complete however far behind the job is. See docs/history.md.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from statusdash import durations
from statusdash.errors import Invalid
from statusdash.schema import HistoryPoint, HistorySeries
from statusdash.server.models import METRIC_COLUMNS
from statusdash.server.rollup_models import HOUR, MINUTE, ROLLUP_ID, SCALES, Tier, cutoff_key
from statusdash.server.rollups import last_id

MAX_POINTS = 2000
# Past this many un-rolled raw rows, find the tail through the key of ``samples`` (host_id, ts)
# instead of scanning every host's rows in ``samples_pending``.
TAIL_BY_INDEX = 20_000
_TIERS: tuple[tuple[str, int], ...] = (
    ("raw", 0),
    (MINUTE.name, MINUTE.step),
    (HOUR.name, HOUR.step),
)


def parse_time(value: str, now: datetime, name: str) -> datetime:
    """An ISO-8601 time (UTC if no offset) or a duration back from now (``15m``, ``30d``)."""
    text = value.strip()
    if durations.is_duration(text):
        try:
            return now - timedelta(seconds=durations.parse(text))
        except (ValueError, OverflowError) as exc:
            raise Invalid(f"{name}: {exc}") from None
    if text == "now":
        return now
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{name}: {value!r} is neither an ISO-8601 time nor a duration like 15m, 24h, 30d"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def resolve_range(
    since: str, until: str | None, points: int, now: datetime
) -> tuple[datetime, datetime]:
    start = parse_time(since, now, "since")
    end = parse_time(until, now, "until") if until else now
    if end <= start:
        raise Invalid("since must be before until")
    if not 1 <= points <= MAX_POINTS:
        raise Invalid(f"points must be between 1 and {MAX_POINTS}")
    return start, end


def column_for(metric: str) -> str:
    col = METRIC_COLUMNS.get(metric)
    if col is None:
        known = ", ".join(METRIC_COLUMNS)
        raise Invalid(f"metric {metric!r} is not kept; known metrics: {known}")
    return col


def choose_tier(start: float, end: float, points: int, cutoffs: Mapping[str, float]) -> str:
    """The coarsest tier whose step fits in a bucket, or a coarser one that reaches ``start``.

    ``cutoffs`` are the prune cutoffs kept in ``history_state``: a tier pruned at C may lack
    data before C, so a range starting earlier goes to the next coarser tier.
    """
    bucket = (end - start) / points
    fits = max(i for i, (_, step) in enumerate(_TIERS) if step <= bucket)
    for name, _ in _TIERS[fits:]:
        if start >= cutoffs.get(cutoff_key(name), -math.inf):
            return name
    return _TIERS[-1][0]


def query(
    conn: sqlite3.Connection,
    host_id: int,
    host: str,
    metric: str,
    start: datetime,
    end: datetime,
    points: int,
) -> HistorySeries:
    """Drop-in for ``query_raw`` that reads through the tiers."""
    column_for(metric)
    st = {str(k): float(v) for k, v in conn.execute("SELECT name, value FROM history_state")}
    name = choose_tier(start.timestamp(), end.timestamp(), points, st)
    if name == "raw":
        return query_raw(conn, host_id, host, metric, start, end, points)
    tier = MINUTE if name == MINUTE.name else HOUR
    by_index = last_id(conn) - st.get(ROLLUP_ID, 0) > TAIL_BY_INDEX
    return query_tier(conn, tier, host_id, host, metric, start, end, points, by_index=by_index)


def _tier_sql(tier: Tier, col: str, by_index: bool) -> str:
    step = tier.step
    # The raw rows past the watermark: the few waiting in samples_pending, or, when many wait,
    # the host's range of samples by key (the id filter then reads each row in the range).
    tail = "samples" if by_index else "samples_pending"
    # Every name in here is ours; every value is bound.
    return (
        "WITH w(v) AS (SELECT coalesce(max(value), 0) FROM history_state"  # noqa: S608
        f" WHERE name = '{ROLLUP_ID}')"
        " SELECT b, total(s), min(lo), max(hi), sum(c) FROM ("
        f" SELECT CAST((t - :t0) / :bucket AS INTEGER) AS b, {col}_sum AS s, {col}_min AS lo,"
        f" {col}_max AS hi, coalesce({col}_n, n) AS c FROM {tier.table}"
        f" WHERE host_id = :h AND t >= :lo AND t < :hi AND {col}_max IS NOT NULL"
        " UNION ALL"
        f" SELECT CAST((CAST(ts / {step} AS INTEGER) * {step} - :t0) / :bucket AS INTEGER),"
        f" {col}, {col}, {col}, 1 FROM {tail}, w"
        f" WHERE host_id = :h AND id > w.v AND ts >= :lo AND ts < :hi AND {col} IS NOT NULL"
        ") GROUP BY b ORDER BY b"
    )


def query_tier(
    conn: sqlite3.Connection,
    tier: Tier,
    host_id: int,
    host: str,
    metric: str,
    start: datetime,
    end: datetime,
    points: int,
    *,
    by_index: bool = False,
) -> HistorySeries:
    """Buckets from one rollup tier plus the raw rows past its watermark, in one snapshot.

    A rollup row counts in the bucket its start falls in; the range is taken in whole tier
    steps (from the first step boundary at or after ``since``), and so are the raw rows.
    """
    col = column_for(metric)
    scale = SCALES[col]
    t0, t1 = start.timestamp(), end.timestamp()
    bucket = (t1 - t0) / points
    lo = math.ceil(t0 / tier.step) * tier.step
    hi = math.ceil(t1 / tier.step) * tier.step
    rows = conn.execute(
        _tier_sql(tier, col, by_index),
        {"t0": t0, "bucket": bucket, "h": host_id, "lo": lo, "hi": hi},
    ).fetchall()
    pts = _points(rows, t0, bucket, scale, points)
    return HistorySeries(
        host=host,
        metric=metric,
        since=start,
        until=end,
        bucket_s=bucket,
        tier=tier.name,
        points=pts,
    )


def _points(
    rows: list[Any], t0: float, bucket: float, scale: int, points: int
) -> list[HistoryPoint]:
    """Rows of (bucket, sum, min, max, count) in stored units -> points in the metric's units."""
    return [
        HistoryPoint(
            t=datetime.fromtimestamp(t0 + b * bucket, UTC),
            avg=s / n / scale,
            min=lo / scale,
            max=hi / scale,
            count=n,
        )
        for b, s, lo, hi, n in rows
        if 0 <= b < points and n
    ]


def query_raw(
    conn: sqlite3.Connection,
    host_id: int,
    host: str,
    metric: str,
    start: datetime,
    end: datetime,
    points: int,
) -> HistorySeries:
    """Average, min and max per bucket from the raw samples."""
    col = column_for(metric)
    scale = SCALES[col]
    t0, t1 = start.timestamp(), end.timestamp()
    bucket = (t1 - t0) / points
    # total(): a float sum, never an integer-overflow error; the average is computed as the
    # tiers compute it, so both give the same number for the same samples.
    rows = conn.execute(
        f"SELECT CAST((ts - ?) / ? AS INTEGER) AS b, total({col}), min({col}), max({col}),"  # noqa: S608
        f" count({col}) FROM samples WHERE host_id = ? AND ts >= ? AND ts < ?"
        f" AND {col} IS NOT NULL GROUP BY b ORDER BY b",
        (t0, bucket, host_id, t0, t1),
    ).fetchall()
    pts = _points(rows, t0, bucket, scale, points)
    return HistorySeries(
        host=host, metric=metric, since=start, until=end, bucket_s=bucket, tier="raw", points=pts
    )
