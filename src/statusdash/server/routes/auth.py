"""Reader login: the admin password for a short-lived signed token, throttled per address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request

from statusdash.schema import TokenResponse
from statusdash.server.auth import login_route
from statusdash.server.deps import AuthDep
from statusdash.server.errors import ApiError

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/token", response_model=TokenResponse, dependencies=[Depends(login_route)])
async def token(
    request: Request,
    auth: AuthDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
) -> TokenResponse:
    addr = request.client.host if request.client else "unknown"
    auth.throttle.check(addr)
    if not auth.check_password(username, password):
        auth.throttle.failed(addr)
        raise ApiError(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    auth.throttle.succeeded(addr)
    access, ttl = auth.issue_token(username)
    return TokenResponse(access_token=access, expires_in=ttl)
