"""Ingest: one report, or a batch for spool catch-up. Acknowledged only once committed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from statusdash.schema import (
    MAX_BATCH_BYTES,
    MAX_REPORT_BYTES,
    MetricsBatch,
    MetricsReport,
    utcnow,
)
from statusdash.server import fastwire
from statusdash.server.auth import Principal
from statusdash.server.body import read_body
from statusdash.server.deps import AgentDep, CtxDep
from statusdash.server.errors import ApiError, invalid
from statusdash.server.storage import Storage, StorageClosed
from statusdash.settings import Settings

router = APIRouter(prefix="/api/metrics", tags=["ingest"])


def _context(settings: Settings) -> dict[str, Any]:
    return {"now": utcnow(), "max_age": timedelta(days=settings.retention_days)}


def _own_hosts(agent: Principal, reports: Sequence[Any]) -> None:
    for r in reports:
        if r.host != agent.name:
            raise ApiError(
                403,
                f"report for host {r.host!r} refused: this agent is {agent.name!r}",
                "host_mismatch",
            )


async def _store(storage: Storage, reports: Sequence[Any]) -> JSONResponse:
    try:
        ack = await storage.ingest(reports)
    except StorageClosed as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "5"}) from None
    return JSONResponse({"accepted": ack.accepted, "duplicates": ack.duplicates})


@router.post("/report", summary="one report; idempotent on report_id")
async def report(request: Request, agent: AgentDep, server: CtxDep) -> JSONResponse:
    body = await read_body(request, MAX_REPORT_BYTES)
    ctx = _context(server.settings)
    r = fastwire.decode_report(body, ctx["now"], ctx["max_age"])
    if r is None:  # refused by the fast decoder: pydantic decides, and says why
        try:
            r = MetricsReport.model_validate_json(body, context=ctx)
        except ValidationError as exc:
            raise invalid(exc) from None
    _own_hosts(agent, [r])
    return await _store(server.storage, [r])


@router.post("/batch", summary="reports oldest first, for spool catch-up")
async def batch(request: Request, agent: AgentDep, server: CtxDep) -> JSONResponse:
    body = await read_body(request, MAX_BATCH_BYTES)
    ctx = _context(server.settings)
    reports = fastwire.decode_batch(body, ctx["now"], ctx["max_age"])
    if reports is None:  # refused by the fast decoder: pydantic decides, and says why
        try:
            reports = MetricsBatch.model_validate_json(body, context=ctx).reports
        except ValidationError as exc:
            raise invalid(exc) from None
    _own_hosts(agent, reports)
    return await _store(server.storage, reports)
