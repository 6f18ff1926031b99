"""``POST /api/auth/renew``: a valid reader token for a fresh one, so a session outlives its TTL.

The new token is bound to the same admin password as any other, so a password change ends
renewals too; a token that is expired, forged or from an old password cannot be renewed. A
session ends ``TOKEN_SESSION_MAX_S`` after its password login whatever the renewals (401
``session_expired``), so a stolen token is good for at most that long.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from statusdash.schema import TokenResponse
from statusdash.server.auth import Principal, require_token
from statusdash.server.deps import AuthDep

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/renew", response_model=TokenResponse)
async def renew(
    reader: Annotated[Principal, Depends(require_token)], auth: AuthDep
) -> TokenResponse:
    access, ttl = auth.issue_token(reader.name, auth_time=reader.auth_time)
    return TokenResponse(access_token=access, expires_in=ttl)
