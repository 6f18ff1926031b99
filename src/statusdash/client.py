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

from statusdash import reach
from statusdash.errors import Invalid, StatusdashError
from statusdash.reach import normalize_url
from statusdash.schema import (
    AgentsAnswer,
    AlertPublic,
    HistorySeries,
    HistorySet,
    HostDetail,
    HostSummary,
    RulesInForce,
    Sentiment,
    SeriesInfo,
    ServiceHealth,
    TokenResponse,
    history_answer,
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


class TokenExpired(ApiError):
    """The server refused the reader's token because it expired (or the password changed)."""

    def __init__(self, server: str, code: str, detail: str) -> None:
        super().__init__(401, code, detail)
        ended = "is no longer valid" if code == "login_expired" else "expired"
        self.args = (f"the login to {server} {ended}: run `statusdash login --server {server}`",)


class WrongPassword(ClientError):
    """The server refused the admin password at ``statusdash login``."""


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
            raise ServerUnreachable(self.base_url, reach.reason(self.base_url, exc)) from exc
        if resp.status_code >= 400:
            try:
                body = resp.json()
                error, detail = str(body.get("error", "error")), str(body.get("detail", ""))
            except ValueError:
                error, detail = "error", resp.text[:200]
            if resp.status_code == 401 and reach.expired(error, detail):
                raise TokenExpired(self.base_url, error, detail)
            raise ApiError(resp.status_code, error, detail or resp.reason_phrase)
        return resp.json()

    # --- endpoints -----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health")
        return result

    def login(self, password: str, username: str = "admin") -> TokenResponse:
        """A reader token for the admin password; ``WrongPassword`` if the server refuses it."""
        data = {"username": username, "password": password, "grant_type": "password"}
        try:
            answer = self.request("POST", "/api/auth/token", data=data)
        except ApiError as exc:
            if exc.status == 401:
                raise WrongPassword(f"wrong password: {self.base_url} refused it") from exc
            raise
        return TokenResponse.model_validate(answer)

    def renew(self) -> TokenResponse:
        """A fresh token for the current one (``POST /api/auth/renew``)."""
        return TokenResponse.model_validate(self.request("POST", "/api/auth/renew"))

    def hosts(self, tags: Mapping[str, str] | None = None) -> list[HostSummary]:
        """The fleet; with ``tags`` only the hosts whose effective tags hold all of them."""
        params = {"tag": [f"{k}={v}" for k, v in tags.items()]} if tags else None
        raw = self.request("GET", "/api/hosts", params=params)
        return [HostSummary.model_validate(h) for h in raw]

    def set_tags(
        self, host: str, put: Mapping[str, str], remove: list[str] | None = None
    ) -> dict[str, Any]:
        """``PUT /api/hosts/{host}/tags``: the host's tags (with sources) after the change."""
        body = {"set": dict(put), "remove": list(remove or [])}
        result: dict[str, Any] = self.request("PUT", f"/api/hosts/{host}/tags", json=body)
        return result

    def agents(self) -> AgentsAnswer:
        """Every agent the server knows (``GET /api/agents``)."""
        return AgentsAnswer.model_validate(self.request("GET", "/api/agents"))

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
        return HistorySeries.model_validate(self._history(host, metric, since, until, points))

    def select_history(
        self,
        host: str,
        metric: str,
        since: str = "1h",
        until: str | None = None,
        points: int = 120,
    ) -> HistorySeries | HistorySet:
        """The history of a series name or selector (``disk.mount.percent{mount="/"}``): one
        series (``LabelledHistory`` when it has labels) or a ``HistorySet`` of several."""
        return history_answer(self._history(host, metric, since, until, points))

    def _history(
        self, host: str, metric: str, since: str, until: str | None, points: int
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"metric": metric, "since": since, "points": points}
        if until:
            params["until"] = until
        raw: dict[str, Any] = self.request("GET", f"/api/hosts/{host}/history", params=params)
        return raw

    def host_series(self, host: str, metric: str | None = None) -> list[SeriesInfo]:
        """Every series ``host`` has (those the ``metric`` selector picks, with one)."""
        params = {"metric": metric} if metric else None
        raw = self.request("GET", f"/api/hosts/{host}/series", params=params)
        return [SeriesInfo.model_validate(s) for s in raw]

    def sentiment(self) -> Sentiment:
        return Sentiment.model_validate(self.request("GET", "/api/hosts/sentiment/overall"))

    def alerts(self, state: str = "active", host: str | None = None) -> list[AlertPublic]:
        params = {"state": state, **({"host": host} if host else {})}
        raw = self.request("GET", "/api/alerts", params=params)
        return [AlertPublic.model_validate(a) for a in raw]

    # --- lifecycle: hosts rm, alerts resolve / unsilence ----------------------------------------
    def remove_host(self, host: str, purge: bool = False) -> dict[str, Any]:
        """``DELETE /api/hosts/{host}``: what was resolved and dropped."""
        params = {"purge": "true"} if purge else None
        result: dict[str, Any] = self.request("DELETE", f"/api/hosts/{host}", params=params)
        return result

    def resolve_alert(self, alert_id: int, reason: str = "") -> AlertPublic:
        body = {"reason": reason} if reason else {}
        raw = self.request("POST", f"/api/alerts/{alert_id}/resolve", json=body)
        return AlertPublic.model_validate(raw)

    def unsilence(self, silence_id: int) -> dict[str, Any]:
        """End a silence now; the silence as it is now (expired)."""
        result: dict[str, Any] = self.request("DELETE", f"/api/alerts/silences/{silence_id}")
        return result

    def services(self) -> list[ServiceHealth]:
        return [ServiceHealth.model_validate(s) for s in self.request("GET", "/api/services")]

    def history_metrics(self) -> dict[str, dict[str, Any]]:
        """The series the server keeps: name -> unit, description, labels."""
        raw: dict[str, dict[str, Any]] = self.request("GET", "/api/history/metrics")
        return raw

    def alert_rules(self) -> RulesInForce:
        """The rules the server judges with, globally and per known host, mount and service."""
        return RulesInForce.model_validate(self.request("GET", "/api/alerts/rules"))

    def ack_alert(self, alert_id: int) -> AlertPublic:
        return AlertPublic.model_validate(self.request("POST", f"/api/alerts/{alert_id}/ack"))

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
class StoredLogin:
    """One server's entry in the token file: its token, when it ends, the CA it was made with."""

    server: str
    token: str
    expires_at: float
    ca: Path | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at < time.time()


_KEEP: Any = object()  # ``TokenStore.save``: keep the CA the entry already has


@dataclass(frozen=True)
class TokenStore:
    """The token file, mode 0600, replaced atomically: every login keyed by its normalized URL.

    Shape (version 2): ``{"version": 2, "default": URL, "logins": {URL: {"token",
    "expires_at", "ca"}}}``; ``default`` is the server of the last ``statusdash login``. The
    first shape, ``{URL: {"token", "expires_at"}}``, is still read (its URLs normalized, no CA)
    and rewritten as version 2 at the next save.
    """

    path: Path

    @classmethod
    def default(cls) -> TokenStore:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return cls(Path(base) / "statusdash" / "token.json")

    def _read(self, strict: bool = True) -> dict[str, Any]:
        """The file as version 2; ``ClientError`` naming it if it cannot be read (``strict``)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"version": 2, "logins": {}}
        except (OSError, ValueError) as exc:
            if not strict:
                return {"version": 2, "logins": {}}
            reason = exc.strerror if isinstance(exc, OSError) else "not valid JSON"
            raise ClientError(
                f"token file {self.path}: {reason}; remove it and run `statusdash login`"
            ) from None
        if not isinstance(data, dict):
            data = {}
        if data.get("version") == 2 and isinstance(data.get("logins"), dict):
            return data
        logins: dict[str, Any] = {}
        for url, entry in data.items():  # the first shape: {URL: {"token", "expires_at"}}
            try:
                logins[normalize_url(url)] = entry
            except Invalid:
                continue
        return {"version": 2, "logins": logins}

    def entry(self, server: str) -> StoredLogin | None:
        """The login kept for ``server`` (any spelling of its URL), expired or not."""
        url = normalize_url(server)
        raw = self._read()["logins"].get(url)
        if not isinstance(raw, dict) or not isinstance(raw.get("token"), str):
            return None
        ca = raw.get("ca")
        try:
            expires_at = float(raw.get("expires_at", 0))
        except (TypeError, ValueError):
            expires_at = 0.0
        return StoredLogin(url, raw["token"], expires_at, Path(ca) if isinstance(ca, str) else None)

    def load(self, server: str) -> str | None:
        """The unexpired token kept for ``server``, if any."""
        login = self.entry(server)
        return None if login is None or login.expired else login.token

    def default_server(self) -> str | None:
        """The server of the last ``statusdash login``, if one is kept."""
        url = self._read().get("default")
        return url if isinstance(url, str) and self.entry(url) is not None else None

    def save(
        self,
        server: str,
        token: str,
        expires_in: float,
        ca: Path | None = _KEEP,
        *,
        make_default: bool = False,
    ) -> Path:
        """Keep ``token`` for ``server``, with the CA it was made with (absolute; by default the
        one already kept), and make it the default server if asked (``statusdash login`` does)."""
        from statusdash.fsutil import atomic_write

        url = normalize_url(server)
        data = self._read(strict=False)  # a damaged file is replaced by a good one
        logins: dict[str, Any] = data["logins"]
        old = logins.get(url)
        if ca is _KEEP:
            kept = old.get("ca") if isinstance(old, dict) else None
        else:
            kept = str(ca.absolute()) if ca is not None else None
        logins[url] = {"token": token, "expires_at": time.time() + expires_in, "ca": kept}
        if make_default or not isinstance(data.get("default"), str):
            data["default"] = url
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
        try:
            stored = self.store.load(self.server) if self.store is not None else None
        except ClientError:  # a damaged token file: nothing to adopt
            stored = None
        with self._lock:
            if stored is None or stored == self.token:
                return False
            self.token = stored
            self._renew_at = self._clock() + _renew_delay(stored)
        return True


def tls_verify(
    url: str, ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext | bool:
    """httpx's ``verify=`` for ``url``; ``TlsFilesError`` naming the file that cannot be loaded."""
    try:
        return httpx_verify(url, ca, cert, key)
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise TlsFilesError(reach.tls_files_problem(exc, ca, cert, key)) from exc
