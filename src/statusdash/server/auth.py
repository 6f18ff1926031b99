"""Who is calling, and may they? Every route names a guard; none is open by accident.

Identities: a client certificate from our CA (role agent or viewer, read by the TLS layer), an
agent API key (``X-API-Key``), or a reader token (``Authorization: Bearer``, never the URL, so
it reaches no access log) signed with STATUS_JWT_SECRET. A token carries ``pwb``, a keyed digest
of the admin password it was issued under: changing STATUS_ADMIN_PASSWORD ends every token.
``create_app`` refuses to start if any route lacks one of the guards below.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import jwt
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection

from statusdash.errors import Invalid
from statusdash.server.conns import mark_authenticated
from statusdash.server.context import context_of
from statusdash.server.db import Readers
from statusdash.server.errors import ApiError
from statusdash.server.keys import KeyVerifier
from statusdash.settings import Settings

ISSUER = "statusdash"
ALGORITHM = "HS256"
BINDING_CLAIM = "pwb"
AUTH_TIME_CLAIM = "auth_time"  # when the session logged in (OpenID Connect's name)
RELOGIN = "the login is no longer valid (the admin password changed); run `statusdash login`"


class PeerIdentity(Protocol):
    """What the TLS layer tells us about a verified client certificate."""

    @property
    def cn(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def serial(self) -> int: ...


@dataclass(frozen=True)
class Principal:
    """Who is calling; ``expires_at`` (a token's exp) and ``serial`` (a certificate's) say when
    the credential ends, for connections that outlive a request (the stream)."""

    role: Literal["agent", "reader"]
    name: str
    via: Literal["cert", "key", "token"]
    expires_at: float | None = None
    serial: int | None = None
    auth_time: float | None = None  # a token's login time: renewals keep it (TOKEN_SESSION_MAX_S)
    cert_not_after: float | None = None  # a certificate's end (agent status shows it)


@dataclass
class LoginThrottle:
    """At most ``limit`` failed logins per address per ``window_s``; then 429 until they age out."""

    limit: int
    window_s: float
    _fails: dict[str, deque[float]] = field(default_factory=dict)

    def check(self, addr: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        q = self._fails.get(addr)
        if q is None:
            return
        while q and now - q[0] > self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            retry = int(self.window_s - (now - q[0])) + 1
            raise ApiError(
                429,
                f"too many failed logins from {addr}; try again in {retry} s",
                headers={"Retry-After": str(retry)},
            )

    def failed(self, addr: str, now: float | None = None) -> None:
        if len(self._fails) > 50_000:
            self._fails.clear()
        self._fails.setdefault(addr, deque()).append(time.monotonic() if now is None else now)

    def succeeded(self, addr: str) -> None:
        self._fails.pop(addr, None)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(spec: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES (comma-separated addresses or CIDRs) as networks; Invalid if one is not."""
    nets: list[Network] = []
    for item in (part.strip() for part in spec.split(",")):
        if item:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise Invalid(f"TRUSTED_PROXIES: {item!r} is not an address or CIDR") from None
    return tuple(nets)


def _trusted(addr: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(conn: HTTPConnection, proxies: tuple[Network, ...]) -> str:
    """The caller's address: the peer, or from X-Forwarded-For only if the peer is a proxy.

    Hops are read right to left (each proxy appends the address it saw); the first one that is
    not itself a trusted proxy is the client. Without TRUSTED_PROXIES the header is ignored.
    """
    peer = conn.client.host if conn.client else "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    for hop in reversed(conn.headers.get("x-forwarded-for", "").split(",")):
        hop = hop.strip()
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a forged or garbled hop: throttle the proxy itself
    return peer


def _never_revoked(_serial: int) -> bool:
    """Without mTLS there are no certificates to revoke."""
    return False


class Auth:
    """The server's authentication state, one per app (``ServerContext.auth``)."""

    def __init__(self, settings: Settings, readers: Readers) -> None:
        self.settings = settings
        self.readers = readers
        self.keys = KeyVerifier()
        self.throttle = LoginThrottle(settings.login_max_failures, settings.login_window_s)
        self.trusted_proxies = parse_proxies(settings.trusted_proxies)
        self.peer_identity: Callable[[MutableMapping[str, Any]], PeerIdentity | None] | None = None
        self.is_revoked: Callable[[int], bool] = _never_revoked  # mTLS set-up replaces it
        secret = settings.status_jwt_secret
        self._secret = secret.get_secret_value() if secret else ""
        self._password_binding = _password_binding(self._secret, settings)
        install_log_redaction()

    @property
    def keys_allowed(self) -> bool:
        return not self.settings.mtls_enabled or self.settings.allow_api_keys

    # --- reader tokens ---------------------------------------------------------------------------
    def check_password(self, username: str, password: str) -> bool:
        expected = self.settings.status_admin_password
        if not expected:
            return False
        ok_user = hmac.compare_digest(username.encode(), b"admin")
        ok_pw = hmac.compare_digest(password.encode(), expected.get_secret_value().encode())
        return ok_user and ok_pw

    def issue_token(
        self, subject: str = "admin", auth_time: float | None = None
    ) -> tuple[str, int]:
        """A reader token for ``subject``, bound to the current admin password; (token, ttl).

        ``auth_time`` is when its session logged in with the password (now, for a login; the
        old token's, for a renewal): no token outlives ``TOKEN_SESSION_MAX_S`` after it.
        """
        now = int(time.time())
        login = int(auth_time) if auth_time is not None else now
        end = login + self.settings.token_session_max_s
        if end <= now:
            raise ApiError(
                401,
                "this session is older than TOKEN_SESSION_MAX_S; log in again with the password",
                error="session_expired",
            )
        ttl = min(self.settings.token_ttl_s, end - now)
        claims = {
            "sub": subject,
            "role": "reader",
            "iss": ISSUER,
            "iat": now,
            "exp": now + ttl,
            AUTH_TIME_CLAIM: login,
            BINDING_CLAIM: self._password_binding,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), ttl

    def verify_token(self, token: str) -> Principal:
        """The reader a token names; 401 if it is forged, expired or from another password."""
        if not self._secret:
            raise ApiError(401, "reader tokens are not configured on this server")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "token expired; run `statusdash login` again") from None
        except jwt.PyJWTError:
            raise ApiError(401, "invalid token") from None
        bound = claims.get(BINDING_CLAIM)
        if not isinstance(bound, str) or not hmac.compare_digest(bound, self._password_binding):
            raise ApiError(401, RELOGIN, error="login_expired")
        if claims.get("role") != "reader":
            raise ApiError(403, "this token does not grant read access")
        login = claims.get(AUTH_TIME_CLAIM, claims["iat"])  # tokens from before the claim
        return Principal(
            "reader",
            str(claims["sub"]),
            "token",
            expires_at=float(claims["exp"]),
            auth_time=float(login) if isinstance(login, int | float) else float(claims["iat"]),
        )

    # --- resolution ------------------------------------------------------------------------------
    def principal(self, conn: HTTPConnection) -> Principal | None:
        """The caller's identity, None if anonymous; 401 for presented-but-bad credentials."""
        if self.peer_identity is not None:
            peer = self.peer_identity(conn.scope)
            if peer is not None:
                if self.is_revoked(peer.serial):
                    raise ApiError(401, f"certificate of {peer.cn} has been revoked")
                if peer.role == "agent":
                    end = getattr(peer, "not_after", None)
                    return Principal(
                        "agent", peer.cn, "cert", serial=peer.serial, cert_not_after=end
                    )
                if peer.role == "viewer":
                    return Principal("reader", peer.cn, "cert", serial=peer.serial)
                raise ApiError(403, f"certificate role {peer.role!r} grants nothing")
        key = conn.headers.get("x-api-key")
        if key:
            if not self.keys_allowed:
                raise ApiError(401, "API keys are not accepted while mTLS is on; use a certificate")
            host = self.keys.host_for(self.readers.get(), key)
            if host is None:
                raise ApiError(401, "unknown or revoked API key")
            return Principal("agent", host, "key")
        header = conn.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise ApiError(401, "Authorization must be 'Bearer <token>'")
            return self.verify_token(token.strip())
        if "token" in conn.query_params:  # a URL ends up in access logs: never a credential
            raise ApiError(401, "a token goes in the Authorization header, not in the URL")
        return None


_URL_SECRET = re.compile(r"(?i)([?&;](?:access_)?token=)[^&;\s\"']*")
# uvicorn logs each request and WebSocket handshake with its path and query string.
REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error")


class UrlSecretFilter(logging.Filter):
    """Masks ``token=`` values in the arguments of a log record (uvicorn's request line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(
            isinstance(a, str) and "token=" in a.lower() for a in args
        ):
            record.args = tuple(
                _URL_SECRET.sub(r"\1***", a) if isinstance(a, str) else a for a in args
            )
        elif isinstance(record.msg, str) and "token=" in record.msg.lower():
            record.msg = _URL_SECRET.sub(r"\1***", record.msg)
        return True


def install_log_redaction() -> None:
    """Put :class:`UrlSecretFilter` on uvicorn's loggers once (every app calls it)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, UrlSecretFilter) for f in logger.filters):
            logger.addFilter(UrlSecretFilter())


def _password_binding(secret: str, settings: Settings) -> str:
    """A short keyed digest of the admin password: tokens carry it, so a new password ends them.

    Keyed with the token secret, so a token reveals nothing that helps guess the password.
    """
    password = settings.status_admin_password
    raw = password.get_secret_value().encode() if password else b""
    digest = hmac.new(secret.encode(), b"statusdash admin password\0" + raw, hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:16]).rstrip(b"=").decode()


# --- guards: every route depends on exactly one of these ---------------------------------------


# Each guard resolves the caller itself: one dependency level, not two (ingest is hot).
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _principal(conn: HTTPConnection) -> Principal | None:
    p = context_of(conn.app).auth.principal(conn)
    if p is not None:
        mark_authenticated(conn.scope)
    return p


async def require_reader(conn: HTTPConnection) -> Principal:
    p = _principal(conn)
    if p is None:
        raise ApiError(
            401, "authentication required: a reader token or certificate", headers=_CHALLENGE
        )
    if p.role != "reader":
        raise ApiError(403, f"{p.role} {p.name!r} may not read; use a viewer identity")
    return p


async def require_agent(conn: HTTPConnection) -> Principal:
    p = _principal(conn)
    if p is None:
        raise ApiError(401, "authentication required: an agent certificate or API key")
    if p.role != "agent":
        raise ApiError(403, f"{p.role} {p.name!r} may not send reports or events")
    return p


async def public() -> None:
    """Marks a route as deliberately open (``/health`` alone)."""


async def login_route() -> None:
    """Marks the token endpoint: anonymous by nature, guarded by the password and the throttle."""


async def require_token(conn: HTTPConnection) -> Principal:
    """A reader who came with a token (renewal: a certificate has nothing to renew)."""
    p = await require_reader(conn)
    if p.via != "token":
        raise ApiError(400, "only a reader token can be renewed; this caller used a certificate")
    return p


GUARDS = (require_reader, require_agent, public, login_route, require_token)


def _calls(dependencies: Iterable[Any]) -> Iterable[Any]:
    for dep in dependencies:
        yield dep.call
        yield from _calls(dep.dependencies)


def api_routes(app: FastAPI) -> list[tuple[str, str, list[Any]]]:
    """Every route of the app as (kind, path, dependency callables), routers flattened."""
    found: list[tuple[str, str, list[Any]]] = []

    def walk(routes: Iterable[Any], prefix: str, inherited: list[Any]) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:  # FastAPI >= 0.16x keeps included routers as branches
                ctx = route.include_context
                deps = [d.dependency for d in ctx.dependencies]
                walk(included.routes, prefix + ctx.prefix, inherited + deps)
            elif isinstance(route, APIRoute | APIWebSocketRoute):
                kind = "websocket" if isinstance(route, APIWebSocketRoute) else "http"
                calls = inherited + list(_calls(route.dependant.dependencies))
                found.append((kind, prefix + route.path, calls))
            else:
                found.append(("other", prefix + str(getattr(route, "path", route)), inherited))

    walk(app.router.routes, "", [])
    return found


def unguarded_routes(app: FastAPI) -> list[str]:
    """Routes that name no guard; ``create_app`` refuses to build an app with any."""
    return [path for _, path, calls in api_routes(app) if not any(c in GUARDS for c in calls)]
