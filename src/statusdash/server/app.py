"""The FastAPI app factory ``create_app(settings)``, used by ``server run`` and the tests."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from statusdash import __version__
from statusdash.server import errors, heartbeat
from statusdash.server.alerting import build_alerting
from statusdash.server.alerts.config import AlertingConfig
from statusdash.server.auth import Auth, require_reader, unguarded_routes
from statusdash.server.conns import CloseRefused
from statusdash.server.context import ServerContext, attach, context_of
from statusdash.server.db import Readers, ensure_schema
from statusdash.server.jobs import build_jobs
from statusdash.server.routes import agents as agents_routes
from statusdash.server.routes import alerts, events, health, hosts, ingest, rules, services
from statusdash.server.routes import auth as auth_routes
from statusdash.server.routes import enroll as enroll_routes
from statusdash.server.routes import maintenance as maintenance_routes
from statusdash.server.routes import metrics as metrics_routes
from statusdash.server.routes import series as series_routes
from statusdash.server.routes import session as session_routes
from statusdash.server.routes import status as status_routes
from statusdash.server.routes import stream as stream_routes
from statusdash.server.storage import Storage
from statusdash.server.tags import Tags, connect_alerting
from statusdash.settings import Settings

log = logging.getLogger(__name__)
ROUTERS = (
    health.router,
    auth_routes.router,
    session_routes.router,
    ingest.router,
    hosts.router,
    series_routes.router,
    rules.router,  # before alerts.router, whose older GET /api/alerts/rules it shadows
    alerts.router,
    maintenance_routes.router,
    events.router,
    services.router,
    stream_routes.router,
    enroll_routes.router,
    agents_routes.router,
)


def tune_gc() -> None:
    """Keep the collector off the ingest path (the benchmark's largest cost without this).

    Requests waiting for their group commit, and the reports of a batch, live long enough to
    reach the older generations, so the default thresholds run full collections over the whole
    heap every few hundred reports. Everything alive after start-up is frozen out of collection,
    and young collections run less often. Reference counting still frees almost everything.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def _stop_all(stops: list[Callable[[], Awaitable[None]]]) -> None:
    """Run every stop even if one fails (each is logged), in the order given."""
    for stop in stops:
        try:
            await stop()
        except Exception:
            log.exception("shutdown step %s failed", getattr(stop, "__qualname__", stop))


async def begin_shutdown(app: FastAPI) -> None:
    """The first step of a SIGTERM, before uvicorn stops accepting or cuts anything
    (``runner.Server``): alerting stops judging while ingest still commits what is in flight,
    and every stream is closed with 1001 going-away (uvicorn's own close says 1012 and then
    waits for the reader), for at most SHUTDOWN_GRACE_S."""
    ctx = context_of(app)
    ctx.alerting.service.stop_judging()
    ctx.alerting.hub.close_all()
    if not await ctx.alerting.hub.wait_closed(ctx.settings.shutdown_grace_s):
        log.warning("shutdown: %d stream(s) did not close in time", ctx.alerting.hub.open_streams)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open storage, start alerting, jobs and the CRL watcher; stop them in reverse order.

    The context is read here, at start-up, so one replaced after ``create_app`` (mTLS, the
    tests' alerting) is the one that runs.
    """
    ctx = context_of(app)
    ctx.storage.open()
    ctx.tags.load()
    log.info("storage open: %s (%d hosts)", ctx.settings.db_path, len(ctx.storage.cache))
    stops: list[Callable[[], Awaitable[None]]] = []
    if ctx.tls is not None:
        stops.append(ctx.tls.watcher.stop)
    stops += [ctx.jobs.stop, ctx.alerting.service.stop]
    try:
        await ctx.alerting.service.start()
        await ctx.alerting.health.start()
        await ctx.jobs.start()
        if ctx.tls is not None:
            ctx.tls.watcher.start()
        stops.insert(0, heartbeat.start(ctx))  # the dead-man's switch stops first
        tune_gc()
        yield
    finally:
        await _stop_all(stops)
        await ctx.storage.close()
        ctx.readers.close()


def create_app(settings: Settings) -> FastAPI:
    """Build the app and its context; refuses to if a secret is missing or a route has no guard."""
    settings.require_server_secrets()
    settings.status_data_dir.mkdir(parents=True, exist_ok=True)
    ensure_schema(settings.db_path)  # upgraded (or refused) before any reader connects
    storage = Storage(settings.db_path, settings.db_synchronous, settings.max_series_per_host)
    readers = Readers(settings.db_path)
    tags = Tags(settings.db_path, storage.cache)
    alerting = build_alerting(settings, storage, AlertingConfig.from_settings(settings))
    connect_alerting(alerting, tags)
    ctx = ServerContext(
        settings=settings,
        storage=storage,
        readers=readers,
        auth=Auth(settings, readers),
        alerting=alerting,
        jobs=build_jobs(settings),
        tags=tags,
    )
    app = FastAPI(
        title="statusdash",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # Starlette builds the redirect from the Host header
    )
    attach(app, ctx)
    errors.install(app)
    if settings.cors_origin:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[settings.cors_origin],
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(CloseRefused)
    for router in ROUTERS:
        app.include_router(router)
    metrics_routes.install(app)  # GET /metrics, and the counters only a middleware sees
    if settings.status_page:  # the public status page (docs/status-page.md)
        app.include_router(status_routes.build_router(settings))

    @app.get("/api/openapi.json", dependencies=[Depends(require_reader)], include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    missing = unguarded_routes(app)
    if missing:
        raise RuntimeError(f"routes without an access guard: {', '.join(missing)}")
    return app
