"""Enrollment, the operator's side: tokens and approvals, written on the server host.

``statusdash enroll`` writes these tables directly, as ``statusdash keys`` does; the running
server (``server/enroll.py``) reads them on every request.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from statusdash.errors import Invalid, NotFound
from statusdash.server.db import session
from statusdash.server.enroll import PREFIX, token_hash
from statusdash.server.models import EnrollRequest, EnrollToken

MAX_PATTERN = 255


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    token_id: str
    hosts: str
    uses: int
    expires_at: float
    tags: dict[str, str]


def create_token(
    db_path: Path, hosts: str, uses: int, expires_s: float, tags: dict[str, str]
) -> IssuedToken:
    """A new token for host ids matching the glob ``hosts``, good ``uses`` times."""
    if (
        not hosts
        or len(hosts) > MAX_PATTERN
        or not all(
            (c.isascii() and c.isalnum() and c.islower()) or c.isdigit() or c in ".-_*?[]!"
            for c in hosts
        )
    ):
        raise Invalid(f"--hosts {hosts!r}: a glob of host-id characters and * ? [ ] (e.g. 'web-*')")
    if uses < 1:
        raise Invalid("--uses must be at least 1")
    if expires_s <= 0:
        raise Invalid("--expires must be longer than 0 s")
    token_id, secret, now = secrets.token_hex(6), secrets.token_urlsafe(32), time.time()
    row = EnrollToken(
        token_id=token_id,
        secret_hash=token_hash(secret),
        hosts=hosts,
        uses_max=uses,
        tags=json.dumps(tags, sort_keys=True),
        created_at=now,
        expires_at=now + expires_s,
    )
    with session(db_path) as s:
        s.add(row)
        s.commit()
    token = f"{PREFIX}_{token_id}_{secret}"
    return IssuedToken(token, token_id, hosts, uses, now + expires_s, tags)


def list_tokens(db_path: Path) -> list[EnrollToken]:
    with session(db_path) as s:
        return list(s.exec(select(EnrollToken).order_by(col(EnrollToken.created_at))))


def token_state(t: EnrollToken, now: float | None = None) -> str:
    """active, revoked, expired or used-up."""
    if t.revoked_at is not None:
        return "revoked"
    if (now or time.time()) >= t.expires_at:
        return "expired"
    return "used-up" if t.uses >= t.uses_max else "active"


def revoke_token(db_path: Path, token_id: str) -> EnrollToken:
    """Revoke a token by id (NotFound if there is none); a revoked one stays revoked."""
    with session(db_path) as s:
        row = s.exec(select(EnrollToken).where(EnrollToken.token_id == token_id)).first()
        if row is None:
            raise NotFound(f"no enrollment token {token_id!r} (see `statusdash enroll token ls`)")
        if row.revoked_at is None:
            row.revoked_at = time.time()
            s.add(row)
            s.commit()
            s.refresh(row)
        return row


def list_pending(db_path: Path) -> list[EnrollRequest]:
    with session(db_path) as s:
        q = select(EnrollRequest).where(EnrollRequest.state == "pending")
        return list(s.exec(q.order_by(col(EnrollRequest.created_at))))


def approve(db_path: Path, host: str) -> EnrollRequest:
    """Approve the waiting request of ``host``; the server signs it when the agent polls next."""
    with session(db_path) as s:
        q = select(EnrollRequest).where(
            EnrollRequest.host == host, EnrollRequest.state == "pending"
        )
        row = s.exec(q).first()
        if row is None:
            raise NotFound(f"no enrollment of {host!r} waits for approval (`enroll pending`)")
        row.state, row.decided_at = "approved", time.time()
        s.add(row)
        s.commit()
        s.refresh(row)
        return row
