"""Issue 10 items 13 and 14: tokens end with their password, renew, and reach no log line."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from statusdash.server.runner import uvicorn_config
from statusdash.settings import Settings
from tests.conftest import ADMIN_PASSWORD, Live, RunningServer, TlsLive, make_settings

OTHER_PASSWORD = "another-admin-password-456"


def login(url: str, password: str = ADMIN_PASSWORD) -> str:
    r = httpx.post(f"{url}/api/auth/token", data={"username": "admin", "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_new_admin_password_ends_every_earlier_token(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    server = RunningServer(settings).start()
    try:
        old = login(server.url)
        assert httpx.get(f"{server.url}/api/hosts", headers=bearer(old)).status_code == 200
    finally:
        server.stop()
    # The same data and the same token secret, another password: as after editing .env.
    changed = settings.model_copy(update={"status_admin_password": SecretStr(OTHER_PASSWORD)})
    server = RunningServer(changed).start()
    try:
        for method, path in (("GET", "/api/hosts"), ("POST", "/api/auth/renew")):
            r = httpx.request(method, f"{server.url}{path}", headers=bearer(old))
            assert r.status_code == 401, (path, r.text)
            body = r.json()
            assert body["error"] == "login_expired" and "no longer valid" in body["detail"]
        with pytest.raises(InvalidStatus) as err:
            connect(
                server.url.replace("http", "ws") + "/api/stream", additional_headers=bearer(old)
            )
        assert err.value.response.status_code == 401
        new = login(server.url, OTHER_PASSWORD)
        assert httpx.get(f"{server.url}/api/hosts", headers=bearer(new)).status_code == 200
    finally:
        server.stop()


def test_renewal_gives_a_fresh_token_to_a_token_and_to_nobody_else(
    live_server: Live, tls_server: TlsLive
) -> None:
    token = live_server.token()
    r = httpx.post(f"{live_server.url}/api/auth/renew", headers=bearer(token))
    assert r.status_code == 200 and r.json()["expires_in"] == live_server.settings.token_ttl_s
    renewed = r.json()["access_token"]
    assert httpx.get(f"{live_server.url}/api/hosts", headers=bearer(renewed)).status_code == 200
    for headers in ({}, bearer("forged"), {"X-API-Key": live_server.api_key("web-1")}):
        r = httpx.post(f"{live_server.url}/api/auth/renew", headers=headers)
        assert r.status_code in (401, 403) and set(r.json()) >= {"error", "detail"}
    with tls_server.client("viewer") as viewer:  # a certificate has nothing to renew
        r = viewer.post("/api/auth/renew")
        assert r.status_code == 400 and "certificate" in r.json()["detail"]


def _forged_by_the_server(settings: Settings, **claims: object) -> str:
    """A token as the server would sign it (its secret and password binding), with ``claims``."""
    import jwt

    from statusdash.server import auth

    assert settings.status_jwt_secret is not None
    secret = settings.status_jwt_secret.get_secret_value()
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "admin",
        "role": "reader",
        "iss": auth.ISSUER,
        "iat": now,
        "exp": now + 600,
        auth.BINDING_CLAIM: auth._password_binding(secret, settings),
    }
    return jwt.encode({**base, **claims}, secret, algorithm=auth.ALGORITHM)


def test_renewals_keep_the_login_time_and_end_at_token_session_max_s(live_server: Live) -> None:
    import jwt

    settings, url = live_server.settings, live_server.url
    limit = settings.token_session_max_s
    first = live_server.token()
    renewed = httpx.post(f"{url}/api/auth/renew", headers=bearer(first)).json()["access_token"]
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in (first, renewed)]
    assert claims[0]["auth_time"] == claims[1]["auth_time"], "a renewal moved the login time"
    # A session near its end is renewed only up to it ...
    now = int(time.time())
    late = _forged_by_the_server(settings, auth_time=now - limit + 100)
    r = httpx.post(f"{url}/api/auth/renew", headers=bearer(late))
    assert r.status_code == 200 and 0 < r.json()["expires_in"] <= 100, r.text
    # ... and one past it, still valid until its own exp, cannot be renewed: a stolen token
    # is good for TOKEN_SESSION_MAX_S at most.
    stale = _forged_by_the_server(settings, auth_time=now - limit - 1)
    assert httpx.get(f"{url}/api/hosts", headers=bearer(stale)).status_code == 200
    r = httpx.post(f"{url}/api/auth/renew", headers=bearer(stale))
    assert r.status_code == 401 and r.json()["error"] == "session_expired", r.text
    # A token from before the claim counts its iat as the login time.
    old = _forged_by_the_server(settings, iat=now - limit - 1)
    r = httpx.post(f"{url}/api/auth/renew", headers=bearer(old))
    assert r.status_code == 401 and r.json()["error"] == "session_expired", r.text


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged_server(tmp_path: Path) -> Iterator[tuple[Settings, _Capture]]:
    """A real server at log level info with uvicorn's access log on, every record captured."""
    settings = make_settings(tmp_path / "data")
    config = uvicorn_config(settings, log_level="info", access_log=True)
    capture = _Capture()
    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "statusdash")]
    for lg in loggers:
        lg.addHandler(capture)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield settings, capture
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        for lg in loggers:
            lg.removeHandler(capture)


def test_no_token_reaches_a_log_line(logged_server: tuple[Settings, _Capture]) -> None:
    settings, capture = logged_server
    url = f"http://127.0.0.1:{settings.status_port}"
    ws = f"ws://127.0.0.1:{settings.status_port}/api/stream"
    token = login(url)
    with connect(ws, additional_headers=bearer(token), open_timeout=10) as stream:  # the header
        assert '"hello"' in stream.recv(timeout=10)
    assert httpx.get(f"{url}/api/hosts", headers=bearer(token)).status_code == 200
    # A client that still puts it in the URL is refused, and its token is masked in the log.
    with pytest.raises(InvalidStatus) as err:
        connect(f"{ws}?token={token}", open_timeout=10)
    assert err.value.response.status_code == 401
    r = httpx.get(f"{url}/api/hosts", params={"token": token})
    assert r.status_code == 401 and "Authorization header" in r.json()["detail"]
    lines = capture.lines
    assert any("/api/stream" in line for line in lines), lines  # the handshakes were logged
    assert any("token=***" in line for line in lines), lines
    assert not [line for line in lines if token in line]
