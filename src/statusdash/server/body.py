"""Request bodies read with a size cap, for routes that parse their own (ingest, events, rules)."""

from __future__ import annotations

from fastapi import Request

from statusdash.server.errors import ApiError


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` (before any parsing)."""
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
