"""``GET /status`` and ``GET /status.json``: the public status page (``STATUS_PAGE=true``).

``build_router(settings)`` makes one router per app, holding that app's ``StatusPage``; its
lifespan (merged into the app's, so it runs after storage and jobs start) binds the page to the
app's context, computes the bars once and leaves their refresh to the job scheduler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response

from statusdash.server.auth import public
from statusdash.server.context import context_of
from statusdash.server.statuspage.config import load_config
from statusdash.server.statuspage.page import StatusPage
from statusdash.settings import Settings

NOSNIFF = {"X-Content-Type-Options": "nosniff"}
# No script, no frames, nothing fetched: the page is one document with inline CSS.
HEADERS = NOSNIFF | {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none';"
        " form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def build_router(settings: Settings) -> APIRouter:
    """The status page's routes; the config file is read now, so a bad one stops start-up."""
    page = StatusPage(settings, load_config(settings.status_page_config))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        page.bind(context_of(app))
        await asyncio.to_thread(page.refresh)
        yield

    router = APIRouter(tags=["status"], lifespan=lifespan)
    max_age = int(settings.status_page_state_max_age_s)
    cache = {"Cache-Control": f"public, max-age={max_age}", "Vary": "Accept-Encoding"}
    zipped = cache | {"Content-Encoding": "gzip"}

    def answer(
        request: Request, plain: bytes, gz: bytes, media: str, extra: dict[str, str]
    ) -> Response:
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(gz, media_type=media, headers=extra | zipped)
        return Response(plain, media_type=media, headers=extra | cache)

    @router.get("/status", dependencies=[Depends(public)], include_in_schema=False)
    async def status_html(request: Request) -> Response:
        r = page.rendered()
        return answer(request, r.html, r.html_gz, "text/html; charset=utf-8", HEADERS)

    @router.get("/status.json", dependencies=[Depends(public)], include_in_schema=False)
    async def status_json(request: Request) -> Response:
        r = page.rendered()
        return answer(request, r.json, r.json_gz, "application/json", NOSNIFF)

    return router
