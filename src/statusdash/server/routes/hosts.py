"""Read API over hosts: the fleet (from the cache), one host, history, overall sentiment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from statusdash import catalog
from statusdash.schema import (
    HOST_ID_PATTERN,
    HistorySeries,
    HostDetail,
    HostSummary,
    Sentiment,
    utcnow,
)
from statusdash.server import history
from statusdash.server.auth import ReaderDep
from statusdash.server.cache import summarize
from statusdash.server.errors import ApiError
from statusdash.server.services import sentiment
from statusdash.server.storage import Storage

router = APIRouter(prefix="/api", tags=["hosts"])
HostPath = Annotated[str, Path(pattern=HOST_ID_PATTERN, max_length=63)]


def _storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


@router.get("/hosts", response_model=list[HostSummary])
async def list_hosts(request: Request, _: ReaderDep) -> list[HostSummary]:
    now = utcnow()
    firing = request.app.state.host_alerts_active
    return [summarize(s, now, firing(s.name)) for s in _storage(request).cache.all()]


@router.get("/hosts/sentiment/overall", response_model=Sentiment, response_model_by_alias=True)
async def overall(request: Request, _: ReaderDep) -> Sentiment:
    return sentiment(request.app, utcnow())


@router.get("/history/metrics")
async def metrics(_: ReaderDep) -> dict[str, dict[str, str | list[str]]]:
    """The series the server keeps, with the unit and meaning of each."""
    return catalog.describe()


@router.get("/hosts/{host}", response_model=HostDetail, response_model_by_alias=True)
async def show_host(request: Request, host: HostPath, _: ReaderDep) -> HostDetail:
    state = _storage(request).cache.get(host)
    if state is None:
        raise ApiError(404, f"no host named {host!r} has reported")
    app = request.app
    return HostDetail(
        summary=summarize(state, utcnow(), app.state.host_alerts_active(host)),
        report=state.latest,
        alerts=app.state.host_alerts(host),
    )


@router.get("/hosts/{host}/history", response_model=HistorySeries)
async def host_history(
    request: Request,
    host: HostPath,
    _: ReaderDep,
    metric: Annotated[str, Query(max_length=64)] = "cpu.percent",
    since: Annotated[str, Query(max_length=64)] = "1h",
    until: Annotated[str | None, Query(max_length=64)] = None,
    points: Annotated[int, Query()] = 120,
) -> HistorySeries:
    storage = _storage(request)
    if storage.cache.get(host) is None:
        raise ApiError(404, f"no host named {host!r} has reported")
    history.column_for(metric)
    start, end = history.resolve_range(since, until, points, utcnow())
    host_id = storage.host_id(host)
    conn_source = request.app.state.readers

    def run() -> HistorySeries:
        return history.query(conn_source.get(), host_id, host, metric, start, end, points)

    return await run_in_threadpool(run)
