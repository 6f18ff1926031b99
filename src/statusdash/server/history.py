"""History queries: a time range of one metric of one host, downsampled into buckets."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta

from statusdash.schema import HISTORY_METRICS, HistoryPoint, HistorySeries
from statusdash.server.errors import ApiError
from statusdash.server.models import METRIC_COLUMNS

MAX_POINTS = 2000
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: str, now: datetime, name: str) -> datetime:
    """An ISO-8601 time (UTC if no offset) or a duration back from now (``15m``, ``30d``)."""
    text = value.strip()
    m = _DURATION.match(text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    if text == "now":
        return now
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            422, f"{name}: {value!r} is neither an ISO-8601 time nor a duration like 15m, 24h, 30d"
        ) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def resolve_range(
    since: str, until: str | None, points: int, now: datetime
) -> tuple[datetime, datetime]:
    start = parse_time(since, now, "since")
    end = parse_time(until, now, "until") if until else now
    if end <= start:
        raise ApiError(422, "since must be before until")
    if not 1 <= points <= MAX_POINTS:
        raise ApiError(422, f"points must be between 1 and {MAX_POINTS}")
    return start, end


def column_for(metric: str) -> str:
    col = METRIC_COLUMNS.get(metric)
    if col is None:
        known = ", ".join(HISTORY_METRICS)
        raise ApiError(422, f"metric {metric!r} is not kept; known metrics: {known}")
    return col


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
    t0, t1 = start.timestamp(), end.timestamp()
    bucket = (t1 - t0) / points
    rows = conn.execute(
        f"SELECT CAST((ts - ?) / ? AS INTEGER) AS b, avg({col}), min({col}), max({col}),"  # noqa: S608
        f" count({col}) FROM samples WHERE host_id = ? AND ts >= ? AND ts < ?"
        f" AND {col} IS NOT NULL GROUP BY b ORDER BY b",
        (t0, bucket, host_id, t0, t1),
    ).fetchall()
    pts = [
        HistoryPoint(t=datetime.fromtimestamp(t0 + b * bucket, UTC), avg=a, min=lo, max=hi, count=n)
        for b, a, lo, hi, n in rows
        if b < points
    ]
    return HistorySeries(
        host=host, metric=metric, since=start, until=end, bucket_s=bucket, tier="raw", points=pts
    )
