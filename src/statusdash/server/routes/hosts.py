"""Read API over hosts: the fleet (from the cache), one host, overall sentiment; and
``DELETE /api/hosts/{id}`` (``hosts rm``), which takes a host out of the fleet. History and
series are in ``routes/series.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from statusdash import catalog, hostid
from statusdash.errors import NotFound
from statusdash.schema import (
    HostDetail,
    HostSummary,
    Sentiment,
    utcnow,
)
from statusdash.server.cache import summarize
from statusdash.server.deps import (
    AlertsDep,
    CtxDep,
    HealthDep,
    ReaderDep,
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
