"""Enrollment routes: the CA for first contact, a CSR with a token, the poll, the renewal.

The anonymous routes are ``public`` but throttled by the login's per-address failure count (a
wrong token, a wrong pattern, an unknown request: each is a failure) and body-capped.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from statusdash.errors import Invalid
from statusdash.server.auth import Auth, client_address, public
from statusdash.server.body import read_body
from statusdash.server.context import ServerContext
from statusdash.server.deps import AgentDep, AuthDep, CtxDep, SettingsDep
from statusdash.server.enroll import Enroller, Outcome, Refused
from statusdash.server.errors import ApiError
from statusdash.settings import Settings

router = APIRouter(prefix="/api/enroll", tags=["enroll"])


def _enroller(settings: Settings) -> Enroller:
    if not settings.mtls_enabled:
        raise ApiError(503, "enrollment needs the server's TLS (MTLS_ENABLED=true)", "no_tls")
    return Enroller(
        settings.db_path, settings.vault_path, settings.enroll_cert_days,
        settings.enroll_pending_max,
    )  # fmt: skip


async def _fields(request: Request, settings: Settings, names: tuple[str, ...]) -> dict[str, str]:
    body = await read_body(request, settings.enroll_max_body_bytes)
    try:
        data: Any = json.loads(body)
    except ValueError:
        raise ApiError(400, "the body is not JSON", "malformed_json") from None
    if not isinstance(data, dict):
        raise ApiError(422, "the body must be a JSON object")
    out: dict[str, str] = {}
    for name in names:
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise ApiError(422, f"{name}: a non-empty string is required")
        out[name] = value
    return out


def _ca(enroller: Enroller) -> str:
    try:
        return enroller.ca_pem()
    except Refused as exc:
        raise ApiError(exc.status, str(exc), exc.error) from None


def _answer(out: Outcome, ca: str) -> JSONResponse:
    body: dict[str, Any] = {"status": out.status, "host": out.host, "request_id": out.request_id}
    if out.status == "pending":
        body["detail"] = f"waiting for `statusdash enroll approve {out.host}`: {out.detail}"
        return JSONResponse(body, status_code=202)
    body.update(certificate=out.certificate, serial=out.serial, ca=ca)
    return JSONResponse(body)


async def _token_tags(ctx: ServerContext, out: Outcome) -> None:
    """An issued enrollment wrote its token's tags: read the host's server tags again."""
    if out.status == "issued":
        await run_in_threadpool(ctx.tags.reload_host, out.host)


def _throttle(auth: Auth, addr: str) -> None:
    """The login's throttle: one count of failures per address for logins and enrollments."""
    try:
        auth.throttle.check(addr)
    except ApiError as exc:
        retry = exc.headers.get("Retry-After", "?")
        raise ApiError(
            429,
            f"too many failed logins or enrollments from {addr}; try again in {retry} s",
            headers=exc.headers,
        ) from None


async def _guarded(auth: Auth, addr: str, call: Any, *args: Any) -> Outcome:
    _throttle(auth, addr)
    try:
        out: Outcome = await run_in_threadpool(call, *args)
    except Refused as exc:
        if exc.status in (401, 403, 404, 409):
            auth.throttle.failed(addr)
        raise ApiError(exc.status, str(exc), exc.error) from None
    except Invalid:
        auth.throttle.failed(addr)
        raise
    return out


@router.get("/ca", dependencies=[Depends(public)], response_class=PlainTextResponse)
async def ca(settings: SettingsDep) -> PlainTextResponse:
    """The CA certificate (PEM): an enrolling agent checks its fingerprint before trusting it."""
    return PlainTextResponse(_ca(_enroller(settings)), media_type="application/x-pem-file")


@router.post("", dependencies=[Depends(public)])
async def enroll(
    request: Request, settings: SettingsDep, auth: AuthDep, ctx: CtxDep
) -> JSONResponse:
    """A CSR and a token: the certificate (200), or a request id to poll (202)."""
    enroller = _enroller(settings)
    ca = _ca(enroller)
    addr = client_address(request, auth.trusted_proxies)
    _throttle(auth, addr)  # a throttled address costs no body read
    form = await _fields(request, settings, ("token", "csr"))
    out = await _guarded(auth, addr, enroller.enroll, form["token"], form["csr"], addr)
    await _token_tags(ctx, out)
    return _answer(out, ca)


@router.get("/requests/{request_id}", dependencies=[Depends(public)])
async def poll(
    request_id: str, request: Request, settings: SettingsDep, auth: AuthDep, ctx: CtxDep
) -> Any:
    """A waiting enrollment: 202 while it waits, then 200 with the certificate."""
    enroller = _enroller(settings)
    addr = client_address(request, auth.trusted_proxies)
    if len(request_id) > 64:
        raise ApiError(404, "no such enrollment request")
    ca = _ca(enroller)
    out = await _guarded(auth, addr, enroller.poll, request_id)
    await _token_tags(ctx, out)
    return _answer(out, ca)


@router.post("/renew")
async def renew(request: Request, agent: AgentDep, settings: SettingsDep) -> JSONResponse:
    """The calling agent's certificate renewed for the CSR's key (CN = the caller's host)."""
    enroller = _enroller(settings)
    ca = _ca(enroller)
    if agent.via != "cert" or agent.serial is None:
        raise ApiError(403, "only an agent certificate can be renewed", "not_a_certificate")
    form = await _fields(request, settings, ("csr",))
    try:
        out = await run_in_threadpool(enroller.renew, agent.name, agent.serial, form["csr"])
    except Refused as exc:
        raise ApiError(exc.status, str(exc), exc.error) from None
    return _answer(out, ca)
