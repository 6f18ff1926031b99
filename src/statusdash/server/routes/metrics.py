"""``GET /metrics``: the Prometheus text exposition, for a viewer certificate or a token."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from statusdash.schema import utcnow
from statusdash.server import prom
from statusdash.server.context import context_of
from statusdash.server.deps import CtxDep, ReaderDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", summary="the server's health (and METRICS_FLEET: the fleet) for Prometheus")
async def metrics(request: Request, _: ReaderDep, server: CtxDep) -> Response:
    pending = await asyncio.to_thread(prom.rollup_pending, server)
    net = prom.net_of(request.scope, asyncio.get_running_loop())
    scrape = prom.Scrape(server, net, pending, utcnow())  # copies what only the loop may walk
    body = await asyncio.to_thread(prom.render, scrape)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)


def install(app: FastAPI) -> None:
    """Add ``/metrics``, count the ingest routes' refusals, time the storage's commits."""
    ctx = context_of(app)
    ctx.storage.commit_observer = ctx.metrics.commit_seconds.observe
    app.add_middleware(prom.CountRefusals, counter=ctx.metrics.ingest_refused)
    app.include_router(router)
