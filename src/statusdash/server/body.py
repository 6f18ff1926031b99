"""Request bodies read with a size cap, for routes that parse their own (ingest, events, rules)."""

from __future__ import annotations

import asyncio

from fastapi import Request

from statusdash.server.context import context_of
from statusdash.server.errors import ApiError


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` (before any parsing).

    The whole body must arrive within ``CONN_BODY_TIMEOUT_S`` of the handler asking for it: a
    body dribbled a byte at a time after complete headers gets a 408 and the connection closed.
    """
    deadline = context_of(request.app).settings.conn_body_timeout_s
    try:
        async with asyncio.timeout(deadline):
            return await _read(request, limit)
    except TimeoutError:
        raise ApiError(
            408,
            f"the request body did not arrive within {deadline:g} s (CONN_BODY_TIMEOUT_S)",
            "body_timeout",
            headers={"Connection": "close"},
        ) from None


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "Content-Length is not a number") from None
        if size > limit:
            raise ApiError(413, f"body of {size} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
