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
from statusdash.server import errors
from statusdash.server.auth import Auth, require_reader, unguarded_routes
from statusdash.server.db import Readers, ensure_schema
from statusdash.server.extensions import install_alerting
from statusdash.server.jobs import install_jobs
from statusdash.server.routes import auth as auth_routes
from statusdash.server.routes import health, hosts, ingest
from statusdash.server.storage import Storage
from statusdash.settings import Settings

log = logging.getLogger(__name__)
Hook = Callable[[FastAPI], Awaitable[None]]


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


def create_app(settings: Settings) -> FastAPI:
    """Build the app; refuses to if a secret is missing or a route has no guard."""
    settings.require_server_secrets()
    settings.status_data_dir.mkdir(parents=True, exist_ok=True)
    ensure_schema(settings.db_path)  # upgraded (or refused) before any reader connects
    storage = Storage(settings.db_path, settings.db_synchronous)
    readers = Readers(settings.db_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage.open()
        log.info("storage open: %s (%d hosts)", settings.db_path, len(storage.cache))
        try:
            for hook in app.state.on_startup:
                await hook(app)
            tune_gc()
            yield
        finally:
            for hook in reversed(app.state.on_shutdown):
                try:
                    await hook(app)
                except Exception:
                    log.exception("shutdown hook %s failed", getattr(hook, "__name__", hook))
            await storage.close()
            readers.close()

    app = FastAPI(
        title="statusdash",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.storage = storage
    app.state.readers = readers
    app.state.auth = Auth(settings, readers)
    # Services add themselves with an ``install(app)`` function: routers, listeners, and hooks
    # that run after storage opens (startup) and before it closes (shutdown), in that order.
    app.state.on_startup = []
    app.state.on_shutdown = []
    errors.install(app)
    if settings.cors_origin:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[settings.cors_origin],
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    for router in (health.router, auth_routes.router, ingest.router, hosts.router):
        app.include_router(router)
    install_alerting(app)
    install_jobs(app)

    @app.get("/api/openapi.json", dependencies=[Depends(require_reader)], include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    missing = unguarded_routes(app)
    if missing:
        raise RuntimeError(f"routes without an access guard: {', '.join(missing)}")
    return app
