"""Reader login: the admin password for a short-lived signed token, throttled per address.

The form is parsed here, not by FastAPI, so the order is ours: the throttle first (a throttled
address costs no body read), then the content type, then a body read with a small cap.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request

from statusdash.schema import TokenResponse
from statusdash.server.auth import client_address, login_route
from statusdash.server.body import read_body
from statusdash.server.deps import AuthDep
from statusdash.server.errors import ApiError

router = APIRouter(prefix="/api/auth", tags=["auth"])

FORM = "application/x-www-form-urlencoded"
_FIELDS = {"username": 64, "password": 1024}  # the longest value each field may have


def _no_body(request: Request) -> bool:
    headers = request.headers
    return headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers


async def _login_form(request: Request, limit: int) -> dict[str, str]:
    """The username and password of an urlencoded form: 415 for another type, 422 if unfit."""
    ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if not ctype and _no_body(request):
        fields: dict[str, list[str]] = {}
    elif ctype != FORM:
        raise ApiError(415, f"send the login as {FORM}, not {ctype or 'no content type'}")
    else:
        body = await read_body(request, limit)
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=8)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, f"the login form cannot be read: {exc}") from None
    form: dict[str, str] = {}
    for name, longest in _FIELDS.items():
        values = fields.get(name, [])
        if len(values) != 1 or len(values[0]) > longest:
            raise ApiError(422, f"{name}: one value of at most {longest} characters is required")
        form[name] = values[0]
    return form


@router.post("/token", response_model=TokenResponse, dependencies=[Depends(login_route)])
async def token(request: Request, auth: AuthDep) -> TokenResponse:
    addr = client_address(request, auth.trusted_proxies)
    auth.throttle.check(addr)
    form = await _login_form(request, auth.settings.token_max_body_bytes)
    if not auth.check_password(form["username"], form["password"]):
        auth.throttle.failed(addr)
        raise ApiError(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    auth.throttle.succeeded(addr)
    access, ttl = auth.issue_token(form["username"])
    return TokenResponse(access_token=access, expires_in=ttl)
