"""Liveness: the one public route."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from statusdash import __version__
from statusdash.server.auth import public

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[Depends(public)])
async def health(request: Request) -> JSONResponse:
    try:
        request.app.state.readers.get().execute("SELECT 1").fetchone()
        db = "ok"
    except sqlite3.Error as exc:
        db = f"error: {exc}"
    status = 200 if db == "ok" else 503
    body = {"status": "ok" if status == 200 else "degraded", "db": db, "version": __version__}
    return JSONResponse(body, status_code=status)
