"""Labelled series (issue 13): ``GET /api/hosts/{id}/series`` lists a host's series, and
``GET /api/hosts/{id}/history`` takes a selector (``disk.mount.percent{mount="/data"}``).
Thin: the work is in ``server/series_query.py``; docs/series.md has the shapes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from statusdash import hostid, selector
from statusdash.errors import NotFound
from statusdash.schema import HistorySeries, HistorySet, LabelledHistory, SeriesInfo, utcnow
from statusdash.server import history, series_query
from statusdash.server.deps import ReaderDep, ReadersDep, SettingsDep, StorageDep
from statusdash.server.storage import Storage

router = APIRouter(prefix="/api", tags=["series"])
HostPath = Annotated[str, Path(pattern=hostid.PATTERN, max_length=hostid.MAX_LEN)]
SelectorQuery = Annotated[str, Query(max_length=selector.MAX_TEXT)]


def _host_id(storage: Storage, host: str) -> int:
    if storage.cache.get(host) is None:
        raise NotFound(f"no host named {host!r} has reported")
    return storage.host_id(host)


@router.get("/hosts/{host}/series", response_model=list[SeriesInfo])
async def host_series(
    storage: StorageDep,
    readers: ReadersDep,
    settings: SettingsDep,
    host: HostPath,
    _: ReaderDep,
    metric: SelectorQuery | None = None,
) -> list[SeriesInfo]:
    """Every series the host has (those the ``metric`` selector picks, with one)."""
    sel = series_query.parse(metric, settings.selector_max_regex) if metric else None
    host_id = _host_id(storage, host)
    seen = dict(storage.series.seen)  # one C-level copy: the writer thread only adds to it

    return await run_in_threadpool(
        lambda: series_query.list_series(readers.get(), host_id, sel, seen)
    )


@router.get("/hosts/{host}/history", response_model=HistorySet | LabelledHistory | HistorySeries)
async def host_history(
    storage: StorageDep,
    readers: ReadersDep,
    settings: SettingsDep,
    host: HostPath,
    _: ReaderDep,
    metric: SelectorQuery = "cpu.percent",
    since: Annotated[str, Query(max_length=64)] = "1h",
    until: Annotated[str | None, Query(max_length=64)] = None,
    points: Annotated[int, Query()] = 120,
) -> HistorySet | LabelledHistory | HistorySeries:
    """A metric's history; ``metric`` is a series name or a selector."""
    sel = series_query.parse(metric, settings.selector_max_regex)
    host_id = _host_id(storage, host)
    start, end = history.resolve_range(since, until, points, utcnow())
    seen = dict(storage.series.seen)  # first/last the writer has not written yet

    def run() -> HistorySet | LabelledHistory | HistorySeries:
        return series_query.query(
            readers.get(),
            host_id,
            host,
            metric,
            sel,
            start,
            end,
            points,
            settings.history_max_series,
            seen,
        )

    return await run_in_threadpool(run)
