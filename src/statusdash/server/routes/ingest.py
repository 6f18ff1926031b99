"""Ingest: one report, or a batch for spool catch-up. Acknowledged only once committed.

Every acknowledgement also carries ``high_water``: the newest ``collected_at`` the server held
for the host when the request arrived (before its own reports), or null if it held none. An
agent that had reports acknowledged after that time knows the server lost them (a restore of an
older backup) and sends its kept copies again (docs/history.md, docs/agent.md). It is read from
memory (the writer's newest sample per host, rebuilt from the samples at start; the latest
cache), never by a query per request. Those refills carry ``X-Statusdash-Refill: 1``: only
``RESTORE_REFILL_MAX_REQUESTS`` of them are taken at once, the others are told to come back
(503, ``Retry-After``), so a whole fleet refilling at once cannot starve live reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from statusdash import wire
from statusdash.schema import utcnow
from statusdash.server.admission import IngestLimit, RateLimited, RefillGate
from statusdash.server.auth import Principal
from statusdash.server.body import read_body
from statusdash.server.context import ServerContext
from statusdash.server.deps import AgentDep, CtxDep
from statusdash.server.errors import ApiError
from statusdash.server.storage import StorageClosed, WriteFailed
from statusdash.settings import Settings
from statusdash.wire import MAX_REPORT_BYTES, MetricsReport, WireError

router = APIRouter(prefix="/api/metrics", tags=["ingest"])
REFILL_HEADER = "X-Statusdash-Refill"  # "1": kept reports sent again (agent/keep.py)


def _max_age(settings: Settings) -> timedelta:
    return timedelta(days=settings.retention_days)


def _refused(exc: WireError) -> ApiError:
    """A 400 for a body that is not JSON, a 422 naming the field for one that breaks the wire."""
    if exc.malformed:
        return ApiError(400, exc.problem, "malformed_json")
    if not exc.path:
        return ApiError(422, f"the body must be a JSON object ({exc.problem})")
    extra: dict[str, Any] = {"fields": [{"field": exc.path, "problem": exc.problem}]}
    if exc.index is not None:
        extra["report_index"] = exc.index
    return ApiError(422, str(exc), "validation_error", extra=extra)


def _own_hosts(agent: Principal, reports: Sequence[MetricsReport]) -> None:
    for r in reports:
        if r.host != agent.name:
            raise ApiError(
                403,
                f"report for host {r.host!r} refused: this agent is {agent.name!r}",
                "host_mismatch",
            )


def high_water(server: ServerContext, host: str) -> str | None:
    """The newest ``collected_at`` the server holds for ``host`` (ISO-8601 UTC), or None."""
    marks: list[datetime] = []
    stored = server.storage.newest(host)
    if stored is not None:
        marks.append(datetime.fromtimestamp(stored, UTC))
    cached = server.storage.cache.newest_collected(host)
    if cached is not None:  # the hosts row outlives samples past raw retention
        marks.append(cached)
    return max(marks).isoformat() if marks else None


def _refill_place(request: Request, server: ServerContext) -> RefillGate | None:
    """For a refill (kept reports sent again after a restore), a place among the few taken at
    once, or a 503 with a Retry-After; None for any other request."""
    if request.headers.get(REFILL_HEADER) != "1":
        return None
    gate, settings = server.storage.refill_gate, server.settings
    if not gate.enter(settings.restore_refill_max_requests):
        raise ApiError(
            503,
            f"{settings.restore_refill_max_requests} refills are being stored"
            " (RESTORE_REFILL_MAX_REQUESTS); send this one again later",
            "refill_busy",
            headers={"Retry-After": str(settings.restore_refill_retry_s)},
        )
    return gate


async def _store(
    server: ServerContext, agent: Principal, reports: Sequence[MetricsReport]
) -> JSONResponse:
    mark = high_water(server, agent.name)  # before these reports: what they could not add
    limit = IngestLimit(
        server.settings.ingest_max_reports_per_interval, server.settings.ingest_min_interval_s
    )
    try:
        ack = await server.storage.ingest(reports, limit)
    except RateLimited as exc:
        raise ApiError(429, str(exc), "ingest_limit") from None
    except StorageClosed as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
    except WriteFailed as exc:
        if exc.transient:
            raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
        raise ApiError(422, str(exc), "unstorable") from None
    server.storage.cache.note_cert(agent.name, agent.cert_not_after)
    return JSONResponse(
        {"accepted": ack.accepted, "duplicates": ack.duplicates, "high_water": mark}
    )


async def _ingest(
    request: Request,
    agent: Principal,
    server: ServerContext,
    max_bytes: int,
    decode: Callable[..., Awaitable[list[MetricsReport]]],
) -> JSONResponse:
    """Read, decode, check and store; a refill first takes its place (or is told to wait)
    before its body is even decoded."""
    gate = _refill_place(request, server)
    try:
        body = await read_body(request, max_bytes)
        try:
            reports = await decode(body, now=utcnow(), max_age=_max_age(server.settings))
        except WireError as exc:
            raise _refused(exc) from None
        _own_hosts(agent, reports)
        return await _store(server, agent, reports)
    finally:
        if gate is not None:
            gate.leave()


async def _one(body: bytes, **kw: Any) -> list[MetricsReport]:
    return [wire.decode_report(body, **kw)]


async def _chunked(body: bytes, **kw: Any) -> list[MetricsReport]:
    """A batch decoded a chunk at a time; other requests run in between (bench/batch_stall.py)."""
    reports: list[MetricsReport] = []
    for chunk in wire.batch_chunks(body, **kw):
        reports.extend(chunk)
        await asyncio.sleep(0)
    return reports


@router.post("/report", summary="one report; idempotent on report_id")
async def report(request: Request, agent: AgentDep, server: CtxDep) -> JSONResponse:
    return await _ingest(request, agent, server, MAX_REPORT_BYTES, _one)


@router.post("/batch", summary="reports oldest first, for spool catch-up")
async def batch(request: Request, agent: AgentDep, server: CtxDep) -> JSONResponse:
    return await _ingest(request, agent, server, server.settings.max_batch_bytes, _chunked)
