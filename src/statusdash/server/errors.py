"""One error shape for every 4xx: ``{"error": CODE, "detail": TEXT}``; never a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from statusdash.errors import Conflict, Invalid, NotFound, StatusdashError
from statusdash.server.domain_errors import (
    HostMismatch,
    InvalidFields,
    LimitExceeded,
    MalformedBody,
)

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


# Each domain error answers with its status and code; a subclass answers as its nearest listed
# ancestor. A StatusdashError not listed is a bug at the edge: it is logged and answered 500.
DOMAIN_STATUS: dict[type[StatusdashError], tuple[int, str]] = {
    MalformedBody: (400, "malformed_json"),
    HostMismatch: (403, "host_mismatch"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    LimitExceeded: (429, "limit_exceeded"),
    Invalid: (422, "validation_error"),
}


class ApiError(Exception):
    """A refusal decided at the route edge itself (auth, body size, a missing parameter)."""

    def __init__(
        self,
        status: int,
        detail: str,
        error: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error or _CODES.get(status, "error")
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra or {}


def error_response(
    status: int,
    detail: str,
    error: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": error or _CODES.get(status, "error"), "detail": detail}
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def validation_detail(errors: list[Any]) -> tuple[str, list[dict[str, str]]]:
    """Turn pydantic errors into one readable line and a list of {field, problem}."""
    fields = [{"field": _loc(tuple(e["loc"])), "problem": str(e["msg"])} for e in errors[:20]]
    text = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
    if len(errors) > 20:
        text += f"; and {len(errors) - 20} more"
    return text, fields


def invalid(exc: ValidationError) -> ApiError:
    """A 400 for JSON that does not parse, a 422 for JSON that breaks the schema."""
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return ApiError(400, f"malformed JSON: {errors[0]['msg']}", "malformed_json")
    if any(e["type"] == "json_type" for e in errors):
        return ApiError(422, "the body must be a JSON object", "validation_error")
    text, fields = validation_detail(errors)
    return ApiError(422, text, "validation_error", extra={"fields": fields})


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the same shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.detail, exc.error, exc.headers, exc.extra)

    async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
        status, code = next(DOMAIN_STATUS[cls] for cls in type(exc).__mro__ if cls in DOMAIN_STATUS)
        extra: dict[str, Any] | None = None
        if isinstance(exc, InvalidFields):
            extra = {"fields": exc.fields}
        elif isinstance(exc, LimitExceeded):
            extra = {"limit": exc.limit, "max": exc.maximum}
        return error_response(status, str(exc), code, extra=extra)

    for cls in DOMAIN_STATUS:
        app.add_exception_handler(cls, _domain_error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        text, fields = validation_detail(list(exc.errors()))
        return error_response(422, text, extra={"fields": fields})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error; see the server log", "internal")
