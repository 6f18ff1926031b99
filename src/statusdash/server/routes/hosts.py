"""Read API over hosts: the fleet (from the cache), one host, history, overall sentiment; and
``DELETE /api/hosts/{id}`` (``hosts rm``), which takes a host out of the fleet."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from statusdash import catalog, hostid
from statusdash.errors import NotFound
from statusdash.schema import (
    HistorySeries,
    HostDetail,
    HostSummary,
    Sentiment,
    utcnow,
)
from statusdash.server import history
from statusdash.server.cache import summarize
from statusdash.server.deps import (
    AlertsDep,
    CtxDep,
    HealthDep,
    ReaderDep,
    ReadersDep,
    StorageDep,
)
from statusdash.server.health_lifecycle import remove_host
from statusdash.server.services import sentiment

router = APIRouter(prefix="/api", tags=["hosts"])
HostPath = Annotated[str, Path(pattern=hostid.PATTERN, max_length=hostid.MAX_LEN)]


@router.get("/hosts", response_model=list[HostSummary])
async def list_hosts(storage: StorageDep, alerts: AlertsDep, _: ReaderDep) -> list[HostSummary]:
    now = utcnow()
    firing = alerts.engine.firing_count
    return [summarize(s, now, firing(s.name)) for s in storage.cache.all()]


@router.get("/hosts/sentiment/overall", response_model=Sentiment, response_model_by_alias=True)
async def overall(ctx: CtxDep, _: ReaderDep) -> Sentiment:
    return sentiment(ctx, utcnow())


@router.get("/history/metrics")
async def metrics(_: ReaderDep) -> dict[str, dict[str, str | list[str]]]:
    """The series the server keeps, with the unit and meaning of each."""
    return catalog.describe()


@router.get("/hosts/{host}", response_model=HostDetail, response_model_by_alias=True)
async def show_host(
    storage: StorageDep, alerts: AlertsDep, host: HostPath, _: ReaderDep
) -> HostDetail:
    state = storage.cache.get(host)
    if state is None:
        raise NotFound(f"no host named {host!r} has reported")
    return HostDetail(
        summary=summarize(state, utcnow(), alerts.engine.firing_count(host)),
        report=state.latest,
        alerts=alerts.for_host(host),
        ingest_refused=storage.refused.get(host, 0),
    )


@router.delete("/hosts/{host}")
async def delete_host(
    health: HealthDep,
    host: HostPath,
    reader: ReaderDep,
    purge: Annotated[bool, Query(description="delete its samples and tiers too")] = False,
) -> dict[str, Any]:
    """Decommission: out of the fleet, alerts resolved, services gone; history kept until
    retention unless ``purge``. Its next report brings it back; its certificate stays valid."""
    return await remove_host(health, host, reader.name, purge)


@router.get("/hosts/{host}/history", response_model=HistorySeries)
async def host_history(
    storage: StorageDep,
    readers: ReadersDep,
    host: HostPath,
    _: ReaderDep,
    metric: Annotated[str, Query(max_length=64)] = "cpu.percent",
    since: Annotated[str, Query(max_length=64)] = "1h",
    until: Annotated[str | None, Query(max_length=64)] = None,
    points: Annotated[int, Query()] = 120,
) -> HistorySeries:
    if storage.cache.get(host) is None:
        raise NotFound(f"no host named {host!r} has reported")
    history.column_for(metric)
    start, end = history.resolve_range(since, until, points, utcnow())
    host_id = storage.host_id(host)

    def run() -> HistorySeries:
        return history.query(readers.get(), host_id, host, metric, start, end, points)

    return await run_in_threadpool(run)
