"""Ingest: one report, or a batch for spool catch-up. Acknowledged only once committed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from statusdash import wire
from statusdash.schema import utcnow
from statusdash.server.admission import IngestLimit, RateLimited
from statusdash.server.auth import Principal
from statusdash.server.body import read_body
from statusdash.server.context import ServerContext
from statusdash.server.deps import AgentDep, CtxDep
from statusdash.server.errors import ApiError
from statusdash.server.storage import StorageClosed, WriteFailed
from statusdash.settings import Settings
from statusdash.wire import MAX_REPORT_BYTES, MetricsReport, WireError

router = APIRouter(prefix="/api/metrics", tags=["ingest"])


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


async def _store(server: ServerContext, reports: Sequence[MetricsReport]) -> JSONResponse:
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
    return JSONResponse({"accepted": ack.accepted, "duplicates": ack.duplicates})


@router.post("/report", summary="one report; idempotent on report_id")
async def report(request: Request, agent: AgentDep, server: CtxDep) -> JSONResponse:
    body = await read_body(request, MAX_REPORT_BYTES)
    try:
        r = wire.decode_report(body, now=utcnow(), max_age=_max_age(server.settings))
    except WireError as exc:
        raise _refused(exc) from None
    _own_hosts(agent, [r])
    return await _store(server, [r])


@router.post("/batch", summary="reports oldest first, for spool catch-up")
async def batch(request: Request, agent: AgentDep, server: CtxDep) -> JSONResponse:
    body = await read_body(request, server.settings.max_batch_bytes)
    reports: list[MetricsReport] = []
    try:  # decoded a chunk at a time; other requests run in between (bench/batch_stall.py)
        for chunk in wire.batch_chunks(body, now=utcnow(), max_age=_max_age(server.settings)):
            reports.extend(chunk)
            await asyncio.sleep(0)
    except WireError as exc:
        raise _refused(exc) from None
    _own_hosts(agent, reports)
    return await _store(server, reports)
