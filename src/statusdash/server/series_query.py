"""Selector queries over a host's series: ``GET /api/hosts/{id}/series`` and the history of a
selector (``disk.mount.percent{mount="/data"}``). The routes stay thin; this module parses the
selector against the catalogue, picks the series and reads them (``server/tsdb/query.py``).

Shapes (docs/series.md): a host-level metric answers as today (``HistorySeries``); a selector
with matchers that picks one series answers today's shape plus ``labels``; a bare labelled
metric, or a selector that picks several, answers ``HistorySet`` (``series``, capped, with
``total`` and ``truncated``); a selector that picks nothing is a 404 naming the host's label
values for the metric.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from statusdash import catalog, selector
from statusdash.errors import NotFound
from statusdash.schema import (
    HistoryPoint,
    HistorySeries,
    HistorySet,
    LabelledHistory,
    SeriesInfo,
    SeriesPoints,
)
from statusdash.selector import Selector
from statusdash.server import history, rollups
from statusdash.server.tsdb import query as tsdb

MAX_LISTED_VALUES = 20  # label values a 404 names before "and N more"


class Ref(Protocol):
    """What a series reference carries (``tsdb.query.SeriesRef``)."""

    @property
    def id(self) -> int: ...
    @property
    def metric(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def unit(self) -> str: ...
    @property
    def first(self) -> datetime: ...
    @property
    def last(self) -> datetime: ...


R = TypeVar("R", bound=Ref)


def catalogue() -> dict[str, tuple[str, ...]]:
    """Metric name -> its label names, as ``GET /api/history/metrics`` lists them."""
    return {name: tuple(entry["labels"]) for name, entry in catalog.describe().items()}


def parse(text: str, max_regex: int) -> Selector:
    """The selector in ``text``, checked against the catalogue (``Invalid`` -> 400)."""
    return selector.parse(text, catalogue(), max_regex=max_regex)


def _order(ref: Ref) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ref.metric, tuple(sorted(ref.labels.items()))


def pick(refs: Sequence[R], sel: Selector) -> list[R]:
    """The series of ``refs`` that ``sel`` matches, by metric then label values."""
    return sorted((r for r in refs if r.metric == sel.metric and sel.matches(r.labels)), key=_order)


def overlapping(refs: Sequence[R], start: datetime, end: datetime) -> list[R]:
    """The series with a sample in [start, end)."""
    return [r for r in refs if r.first < end and r.last >= start]


def label_text(labels: Mapping[str, str]) -> str:
    """``{mount="/data"}`` for a label set."""
    return "{" + ", ".join(f"{k}={selector.quote(v)}" for k, v in sorted(labels.items())) + "}"


def nothing_matched(host: str, text: str, metric: str, refs: Sequence[Ref]) -> NotFound:
    """The 404 for a selector that picks no series: the host's label values for the metric."""
    have = sorted({label_text(r.labels) for r in refs if r.metric == metric})
    if not have:
        return NotFound(f"host {host!r} has no {metric} series; nothing matches {text}")
    shown = ", ".join(have[:MAX_LISTED_VALUES])
    more = f" and {len(have) - MAX_LISTED_VALUES} more" if len(have) > MAX_LISTED_VALUES else ""
    return NotFound(f"no {metric} series of host {host!r} matches {text}; it has {shown}{more}")


def info(ref: Ref) -> SeriesInfo:
    return SeriesInfo(
        metric=ref.metric, labels=dict(ref.labels), unit=ref.unit, first=ref.first, last=ref.last
    )


def shape(
    host: str,
    text: str,
    sel: Selector,
    picked: Sequence[R],
    start: datetime,
    end: datetime,
    points: int,
    max_series: int,
    read: Callable[[Sequence[R]], Mapping[int, list[HistoryPoint]]],
    tier: str = "",
) -> LabelledHistory | HistorySet:
    """The answer for the series ``picked`` (non-empty): one, or a capped set; ``read`` reads
    the points of the series it is given."""
    bucket = (end - start).total_seconds() / points
    if sel.matchers and len(picked) == 1:
        ref = picked[0]
        pts = read([ref]).get(ref.id, [])
        return LabelledHistory(
            host=host,
            metric=sel.metric,
            labels=dict(ref.labels),
            since=start,
            until=end,
            bucket_s=bucket,
            tier=tier or "raw",
            points=pts,
        )
    live = overlapping(picked, start, end)
    kept = live[:max_series]
    got = read(kept) if kept else {}
    return HistorySet(
        host=host,
        metric=sel.metric,
        selector=str(sel),
        unit=picked[0].unit,
        since=start,
        until=end,
        bucket_s=bucket,
        tier=tier,
        series=[
            SeriesPoints(
                labels=dict(r.labels), first=r.first, last=r.last, points=got.get(r.id, [])
            )
            for r in kept
        ],
        total=len(live),
        truncated=len(live) > len(kept),
    )


# --- over the store -----------------------------------------------------------------------------
Seen = Mapping[int, tuple[float, float]]  # series id -> (first, last) not yet in the registry


def _fresh(refs: Sequence[tsdb.SeriesRef], seen: Seen) -> list[tsdb.SeriesRef]:
    """The refs with the first/last the storage writer holds in memory and has not written to
    ``series`` yet (it writes them every few seconds), so ``last`` is the newest sample."""
    out = []
    for r in refs:
        span = seen.get(r.id)
        if span is not None:
            first = min(r.first, datetime.fromtimestamp(span[0], UTC))
            last = max(r.last, datetime.fromtimestamp(span[1], UTC))
            r = replace(r, first=first, last=last)
        out.append(r)
    return out


def list_series(
    conn: sqlite3.Connection, host_id: int, sel: Selector | None, seen: Seen
) -> list[SeriesInfo]:
    """Every series the host has (those ``sel`` picks, with a selector)."""
    refs = _fresh(tsdb.host_series(conn, host_id, sel.metric if sel else None), seen)
    chosen = pick(refs, sel) if sel else sorted(refs, key=_order)
    return [info(r) for r in chosen]


def query(
    conn: sqlite3.Connection,
    host_id: int,
    host: str,
    text: str,
    sel: Selector,
    start: datetime,
    end: datetime,
    points: int,
    max_series: int,
    seen: Seen,
) -> HistorySeries | LabelledHistory | HistorySet:
    """The history of ``sel`` on one host, in the shape its match calls for."""
    if not catalogue()[sel.metric]:  # a host-level series: today's answer
        return history.query(conn, host_id, host, sel.metric, start, end, points)
    refs = _fresh(tsdb.host_series(conn, host_id, sel.metric), seen)
    picked = pick(refs, sel)
    if not picked:
        raise nothing_matched(host, text, sel.metric, refs)
    # The tier read_series reads (it decides the same way, in its own snapshot).
    tier = history.choose_tier(start.timestamp(), end.timestamp(), points, rollups.state(conn))

    def read(chosen: Sequence[tsdb.SeriesRef]) -> Mapping[int, list[HistoryPoint]]:
        return tsdb.read_series(conn, chosen, start, end, points)

    return shape(host, text, sel, picked, start, end, points, max_series, read, tier)
