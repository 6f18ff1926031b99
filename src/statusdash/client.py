"""The API client (httpx) used by the CLI and the TUI: typed answers, clear errors."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        creds = credentials or Credentials()
        headers = {"Authorization": f"Bearer {creds.token}"} if creds.token else {}
        if verify is None:
            verify = tls_verify(self.base_url, ca, creds.cert, creds.key)
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, verify=verify, timeout=timeout
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
