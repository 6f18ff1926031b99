"""The API client (httpx) used by the CLI and the TUI: typed answers, clear errors.

Also the reader's login: the token file ``statusdash login`` writes (:class:`TokenStore`) and a
:class:`TokenSession` that renews its token before it ends and stores each renewal.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from statusdash.errors import StatusdashError
from statusdash.schema import (
    AlertPublic,
    HistorySeries,
    HostDetail,
    HostSummary,
    RulesInForce,
    Sentiment,
    ServiceHealth,
    TokenResponse,
)
from statusdash.tlsclient import httpx_verify


class ClientError(StatusdashError):
    """Base of the errors a reader can show as a message."""


class TlsFilesError(ClientError):
    """The CA, certificate or key given to a reader cannot be loaded."""


class ServerUnreachable(ClientError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the server at {url}: {reason}")
        self.url = url


class ApiError(ClientError):
    """The server's refusal: ``(status, code, detail)`` in the server's ``ApiError`` order."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Credentials:
    """How a reader proves itself: a bearer token, a viewer certificate, or both."""

    token: str | None = None
    cert: Path | None = None
    key: Path | None = None


class ApiClient:
    """A synchronous, kept-alive client of the read API. Safe to use from one thread at a time."""

    def __init__(
        self,
        base_url: str,
        *,
        ca: Path | None = None,
        credentials: Credentials | None = None,
        timeout: float = 10.0,
        verify: ssl.SSLContext | bool | None = None,
        session: TokenSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        creds = credentials or Credentials()
        use_header = creds.token and session is None
        headers = {"Authorization": f"Bearer {creds.token}"} if use_header else {}
        if verify is None:
            verify = tls_verify(self.base_url, ca, creds.cert, creds.key)
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, verify=verify, timeout=timeout, auth=session
        )

    # --- plumbing ------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
    ) -> Any:
        try:
            resp = self._http.request(method, path, params=params, json=json, data=data)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.base_url, _reason(exc)) from exc
        if resp.status_code >= 400:
            try:
                body = resp.json()
                error, detail = str(body.get("error", "error")), str(body.get("detail", ""))
            except ValueError:
                error, detail = "error", resp.text[:200]
            raise ApiError(resp.status_code, error, detail or resp.reason_phrase)
        return resp.json()

    # --- endpoints -----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health")
        return result

    def login(self, password: str, username: str = "admin") -> TokenResponse:
        data = {"username": username, "password": password, "grant_type": "password"}
        return TokenResponse.model_validate(self.request("POST", "/api/auth/token", data=data))

    def renew(self) -> TokenResponse:
        """A fresh token for the current one (``POST /api/auth/renew``)."""
        return TokenResponse.model_validate(self.request("POST", "/api/auth/renew"))

    def hosts(self) -> list[HostSummary]:
        return [HostSummary.model_validate(h) for h in self.request("GET", "/api/hosts")]

    def host(self, host: str) -> HostDetail:
        return HostDetail.model_validate(self.request("GET", f"/api/hosts/{host}"))

    def history(
        self,
        host: str,
        metric: str,
        since: str = "1h",
        until: str | None = None,
        points: int = 120,
    ) -> HistorySeries:
        params: dict[str, Any] = {"metric": metric, "since": since, "points": points}
        if until:
            params["until"] = until
        raw = self.request("GET", f"/api/hosts/{host}/history", params=params)
        return HistorySeries.model_validate(raw)

    def sentiment(self) -> Sentiment:
        return Sentiment.model_validate(self.request("GET", "/api/hosts/sentiment/overall"))

    def alerts(self, state: str = "active") -> list[AlertPublic]:
        raw = self.request("GET", "/api/alerts", params={"state": state})
        return [AlertPublic.model_validate(a) for a in raw]

    def services(self) -> list[ServiceHealth]:
        return [ServiceHealth.model_validate(s) for s in self.request("GET", "/api/services")]

    def alert_rules(self) -> RulesInForce:
        """The rules the server judges with, globally and per known host, mount and service."""
        return RulesInForce.model_validate(self.request("GET", "/api/alerts/rules"))

    def ack_alert(self, alert_id: int) -> AlertPublic:
        return AlertPublic.model_validate(self.request("POST", f"/api/alerts/{alert_id}/ack"))

    # The same two as the lifecycle branch's (``alerts resolve`` / ``alerts unsilence``): at the
    # merge, keep one copy of each.
    def resolve_alert(self, alert_id: int, reason: str = "") -> AlertPublic:
        body = {"reason": reason} if reason else {}
        raw = self.request("POST", f"/api/alerts/{alert_id}/resolve", json=body)
        return AlertPublic.model_validate(raw)

    def unsilence(self, silence_id: int) -> dict[str, Any]:
        """End a silence now; the silence as it is now (expired)."""
        result: dict[str, Any] = self.request("DELETE", f"/api/alerts/silences/{silence_id}")
        return result

    def silence(
        self, host: str, rule: str | None, subject: str | None, for_s: float, comment: str = ""
    ) -> dict[str, Any]:
        """Mute the notices of ``host``'s alerts of ``rule`` (and ``subject``) for ``for_s``."""
        want: dict[str, Any] = {"host": host, "for": for_s, "comment": comment}
        if rule:
            want["rule"] = rule
        if subject:
            want["subject"] = subject
        made: dict[str, Any] = self.request("POST", "/api/alerts/silences", json=want)
        return made

    def silences(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.request("GET", "/api/alerts/silences")
        return rows


# --- the stored login --------------------------------------------------------------------------

RENEW_AFTER = 0.5  # of a token's lifetime: renewed with half of it left, so a slow answer is fine


class LoginExpired(ClientError):
    """The server no longer takes the reader's token (expired, password changed): log in again."""


@dataclass(frozen=True)
class TokenStore:
    """The token file: ``{server URL: {"token", "expires_at"}}``, mode 0600, replaced atomically."""

    path: Path

    @classmethod
    def default(cls) -> TokenStore:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return cls(Path(base) / "statusdash" / "token.json")

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self, server: str) -> str | None:
        """The unexpired token kept for ``server``, if any."""
        entry = self._read().get(server)
        if not isinstance(entry, dict) or entry.get("expires_at", 0) < time.time():
            return None
        token = entry.get("token")
        return token if isinstance(token, str) else None

    def save(self, server: str, token: str, expires_in: float) -> Path:
        from statusdash.fsutil import atomic_write

        data = self._read()
        data[server] = {"token": token, "expires_at": time.time() + expires_in}
        atomic_write(self.path, json.dumps(data, indent=2))
        return self.path


def _renew_delay(token: str) -> float:
    """Seconds until ``token`` is due for renewal, from its own (unverified) ``iat``/``exp``."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp, iat = float(claims["exp"]), float(claims["iat"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0.0  # not a token we can read: renew at once, and learn its lifetime
    return max(0.0, exp - time.time() - (exp - iat) * (1 - RENEW_AFTER))


class TokenSession(httpx.Auth):
    """A reader's token, shared by every client of one reader, renewed before it ends.

    Each renewal is kept in the store; when the server refuses the token, a newer one that a
    ``statusdash login`` elsewhere stored is taken up (:meth:`adopt_stored`).
    """

    def __init__(
        self,
        server: str,
        token: str,
        *,
        store: TokenStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server = server.rstrip("/")
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()
        self.token = token
        self.renewals = 0
        self._renew_at = clock() + _renew_delay(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request

    def renew_in(self) -> float:
        """Seconds until the token is due for renewal (0: now)."""
        return max(0.0, self._renew_at - self._clock())

    def renew(self, client: ApiClient) -> None:
        """Trade the token for a fresh one and store it; ``LoginExpired`` if it is refused."""
        try:
            fresh = client.renew()
        except ApiError as exc:
            if exc.status in (400, 401, 403):
                raise LoginExpired(f"login expired: run `statusdash login` ({exc.detail})") from exc
            raise
        with self._lock:
            self.token = fresh.access_token
            self._renew_at = self._clock() + fresh.expires_in * RENEW_AFTER
            self.renewals += 1
        if self.store is not None:
            self.store.save(self.server, fresh.access_token, fresh.expires_in)

    def adopt_stored(self) -> bool:
        """Take the stored token if it is another one than ours (a new login); True if taken."""
        stored = self.store.load(self.server) if self.store is not None else None
        with self._lock:
            if stored is None or stored == self.token:
                return False
            self.token = stored
            self._renew_at = self._clock() + _renew_delay(stored)
        return True


def tls_verify(
    url: str, ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext | bool:
    """httpx's ``verify=`` for ``url``; ``TlsFilesError`` if a file cannot be loaded."""
    try:
        return httpx_verify(url, ca, cert, key)
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise TlsFilesError(f"cannot load TLS files: {exc}") from exc


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in text:
        return f"the server's certificate is not trusted ({text}); pass --ca"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return f"{text} (a refused client certificate looks like this; check --cert/--key)"
    return text
