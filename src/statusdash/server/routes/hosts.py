"""Read API over hosts: the fleet (from the cache), one host, overall sentiment; and
``DELETE /api/hosts/{id}`` (``hosts rm``), which takes a host out of the fleet. History and
series are in ``routes/series.py``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from statusdash import catalog, hostid, tagtext
from statusdash.errors import Invalid, NotFound
from statusdash.schema import (
    HostDetail,
    HostSummary,
    Sentiment,
    TagPublic,
    utcnow,
)
from statusdash.server.cache import summarize
from statusdash.server.deps import (
    CtxDep,
    ReaderDep,
)
from statusdash.server.health_lifecycle import remove_host
from statusdash.server.services import sentiment

router = APIRouter(prefix="/api", tags=["hosts"])


class TagsChange(BaseModel):
    """``PUT /api/hosts/{id}/tags``: server tags to set and keys to remove (docs/tags.md)."""

    model_config = ConfigDict(extra="forbid")

    set: dict[str, str] = Field(default_factory=dict, max_length=tagtext.MAX_TAGS)
    remove: list[str] = Field(default_factory=list, max_length=tagtext.MAX_TAGS)


HostPath = Annotated[str, Path(pattern=hostid.PATTERN, max_length=hostid.MAX_LEN)]


TagQuery = Annotated[
    list[str] | None,
    Query(description="KEY=VALUE: only hosts with this effective tag (repeat: all of them)"),
]


@router.get("/hosts", response_model=list[HostSummary])
async def list_hosts(ctx: CtxDep, _: ReaderDep, tag: TagQuery = None) -> list[HostSummary]:
    now = utcnow()
    firing = ctx.alerting.service.engine.firing_count
    want = _tag_filter(tag or [])
    tags = ctx.tags
    return [
        summarize(s, now, firing(s.name), tags.of(s.name))
        for s in ctx.storage.cache.all()
        if not want or tags.matches(s.name, want)
    ]


def _tag_filter(pairs: list[str]) -> dict[str, str]:
    if len(pairs) > tagtext.MAX_TAGS:
        raise Invalid(f"tag: {len(pairs)} filters; at most {tagtext.MAX_TAGS}")
    try:
        return tagtext.parse_pairs(pairs)
    except tagtext.TagError as exc:
        raise Invalid(f"tag: {exc}") from None


@router.get("/hosts/sentiment/overall", response_model=Sentiment, response_model_by_alias=True)
async def overall(ctx: CtxDep, _: ReaderDep) -> Sentiment:
    return sentiment(ctx, utcnow())


@router.get("/history/metrics")
async def metrics(_: ReaderDep) -> dict[str, dict[str, str | list[str]]]:
    """The series the server keeps, with the unit and meaning of each."""
    return catalog.describe()


@router.get("/hosts/{host}", response_model=HostDetail, response_model_by_alias=True)
async def show_host(ctx: CtxDep, host: HostPath, _: ReaderDep) -> HostDetail:
    storage, alerts = ctx.storage, ctx.alerting.service
    state = storage.cache.get(host)
    if state is None:
        raise NotFound(f"no host named {host!r} has reported")
    explained = ctx.tags.explain(host)
    return HostDetail(
        summary=summarize(state, utcnow(), alerts.engine.firing_count(host), ctx.tags.of(host)),
        report=state.latest,
        alerts=alerts.for_host(host),
        ingest_refused=storage.refused.get(host, 0),
        tags={k: TagPublic(**v) for k, v in explained["tags"].items()},
        tags_blocked=explained["blocked"],
    )


@router.put("/hosts/{host}/tags")
async def put_tags(ctx: CtxDep, host: HostPath, body: TagsChange, reader: ReaderDep) -> Any:
    """Set server tags of a host (they win over the agent's; an empty value blocks the key) and
    remove others; answers the host's tags as ``GET /api/hosts/{id}`` shows them."""
    if ctx.storage.cache.get(host) is None:
        names = [st.name for st in ctx.storage.cache.all()]
        raise NotFound(f"no host named {host!r} has reported; the hosts are: {_names(names)}")
    await ctx.tags.update(host, body.set, body.remove, reader.name)
    explained = ctx.tags.explain(host)
    return {"host": host, "tags": explained["tags"], "tags_blocked": explained["blocked"]}


def _names(names: list[str], show: int = 10) -> str:
    more = f" and {len(names) - show} more" if len(names) > show else ""
    return (", ".join(names[:show]) or "none") + more


@router.delete("/hosts/{host}")
async def delete_host(
    ctx: CtxDep,
    host: HostPath,
    reader: ReaderDep,
    purge: Annotated[bool, Query(description="delete its samples and tiers too")] = False,
) -> dict[str, Any]:
    """Decommission: out of the fleet, alerts resolved, services gone; history kept until
    retention unless ``purge`` (which deletes its server tags too). Its next report brings it
    back; its certificate stays valid."""
    out = await remove_host(ctx.alerting.health, host, reader.name, purge)
    if purge:
        await ctx.tags.forget(host)
    return out
