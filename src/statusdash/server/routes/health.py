"""Liveness: the one public route."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from statusdash import __version__
from statusdash.server.auth import public
from statusdash.server.deps import ReadersDep

router = APIRouter(tags=["health"])


@router.get("/health", dependencies=[Depends(public)])
async def health(readers: ReadersDep) -> JSONResponse:
    try:
        readers.get().execute("SELECT 1").fetchone()
        db = "ok"
    except sqlite3.Error as exc:
        db = f"error: {exc}"
    status = 200 if db == "ok" else 503
    body = {"status": "ok" if status == 200 else "degraded", "db": db, "version": __version__}
    return JSONResponse(body, status_code=status)
