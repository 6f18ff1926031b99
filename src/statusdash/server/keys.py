"""Agent API keys: bound to one host, shown once, stored hashed, checked in constant time.

A key reads ``sdk_<key_id>_<secret>``; the key id finds the row, the secret is compared by hash.
The secret carries 256 bits of entropy, so a fast hash is enough (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from statusdash import hostid
from statusdash.errors import Invalid
from statusdash.server.db import session
from statusdash.server.models import ApiKey

PREFIX = "sdk"


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    host: str
    key: str  # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(key: str) -> tuple[str, str] | None:
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def issue(db_path: Path, host: str) -> IssuedKey:
    if not hostid.is_valid(host):
        raise Invalid(
            f"{host!r} is not a valid host id (lowercase letters, digits, '.', '_', '-';"
            " at most 63 characters)"
        )
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with session(db_path) as s:
        s.add(ApiKey(key_id=key_id, host=host, secret_hash=_hash(secret), created_at=time.time()))
        s.commit()
    return IssuedKey(key_id, host, f"{PREFIX}_{key_id}_{secret}")


def list_keys(db_path: Path) -> list[ApiKey]:
    with session(db_path) as s:
        return list(s.exec(select(ApiKey).order_by(col(ApiKey.host), col(ApiKey.created_at))))


def revoke(db_path: Path, host: str) -> int:
    """Revoke every active key of ``host``; returns how many."""
    with session(db_path) as s:
        rows = s.exec(
            select(ApiKey).where(ApiKey.host == host, col(ApiKey.revoked_at).is_(None))
        ).all()
        for row in rows:
            row.revoked_at = time.time()
            s.add(row)
        s.commit()
        return len(rows)


class KeyVerifier:
    """Checks presented keys against the table, caching rows for a few seconds."""

    TTL_S = 5.0

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, str | None, str | None]] = {}

    def host_for(self, conn: sqlite3.Connection, key: str) -> str | None:
        """The host the key is bound to, or None if it is unknown, wrong or revoked."""
        parts = _split(key)
        if parts is None:
            return None
        key_id, secret = parts
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is None or now - hit[0] > self.TTL_S:
            row = conn.execute(
                "SELECT host, secret_hash FROM api_keys WHERE key_id = ? AND revoked_at IS NULL",
                (key_id,),
            ).fetchone()
            hit = (now, row[0], row[1]) if row else (now, None, None)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = hit
        _, host, digest = hit
        # Compare even when the id is unknown, so timing says nothing about which ids exist.
        ok = hmac.compare_digest(_hash(secret), digest or "0" * 64)
        return host if ok and host else None
