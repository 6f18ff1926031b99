"""Default deny, proved by walking every route; tokens; login throttling."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from statusdash.server.app import create_app
from statusdash.server.auth import api_routes, unguarded_routes
from tests.conftest import ADMIN_PASSWORD, Live, make_settings

PUBLIC = {"/health"}
# Enrollment is anonymous by nature (the token is in the body) and needs the server's TLS: a
# plain-HTTP server answers 503 (tests/server/test_enroll*.py walk it over TLS).
ENROLL = {"/api/enroll", "/api/enroll/ca", "/api/enroll/requests/{request_id}"}


def test_every_route_refuses_an_anonymous_caller(live_server: Live) -> None:
    app: FastAPI = live_server.server.app
    routes = api_routes(app)
    assert len(routes) >= 9
    checked = 0
    for kind, path, _ in routes:
        url = live_server.url + path.replace("{host}", "web-1")
        if path in PUBLIC:
            assert httpx.get(url).status_code == 200
            checked += 1
            continue
        if path in ENROLL:
            answered = [httpx.request(m, url) for m in ("GET", "POST")]
            assert [r.json()["error"] for r in answered if r.status_code != 405] == ["no_tls"]
            checked += 1
            continue
        if kind == "websocket":
            # Upgrade without credentials: must not switch protocols.
            r = httpx.get(
                url,
                headers={
                    "Connection": "Upgrade",
                    "Upgrade": "websocket",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                },
            )
            assert r.status_code in (401, 403), path
        else:
            answered = [httpx.request(m, url) for m in ("GET", "POST", "PUT", "DELETE")]
            answered = [r for r in answered if r.status_code != 405]
            assert answered, path
            for r in answered:
                assert r.status_code in (401, 403, 422), (path, r.status_code)
                assert r.json()["error"] in ("unauthorized", "forbidden", "validation_error")
                if r.status_code == 422:  # only the login form may answer 422, never data
                    assert path == "/api/auth/token"
        checked += 1
    assert checked == len(routes)


def test_a_route_without_a_guard_is_caught(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(tmp_path))
    rogue = APIRouter()

    @rogue.get("/api/rogue")
    async def _rogue() -> dict[str, str]:
        return {}

    app.include_router(rogue)
    assert unguarded_routes(app) == ["/api/rogue"]


def test_login_and_token_use(live_server: Live) -> None:
    r = httpx.post(
        f"{live_server.url}/api/auth/token",
        data={"username": "admin", "password": ADMIN_PASSWORD},
    )
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "bearer" and body["expires_in"] > 0
    ok = httpx.get(
        f"{live_server.url}/api/hosts", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert ok.status_code == 200
    forged = body["access_token"][:-4] + "AAAA"
    bad = httpx.get(f"{live_server.url}/api/hosts", headers={"Authorization": f"Bearer {forged}"})
    assert bad.status_code == 401


def test_readers_cannot_ingest(live_server: Live) -> None:
    from tests.conftest import make_report

    r = live_server.reader().post("/api/metrics/report", json=make_report("web-1"))
    assert r.status_code == 403


def test_repeated_failed_logins_are_throttled(live_server: Live) -> None:
    url = f"{live_server.url}/api/auth/token"
    codes = [
        httpx.post(url, data={"username": "admin", "password": f"wrong-{i}"}).status_code
        for i in range(live_server.settings.login_max_failures + 1)
    ]
    assert codes[:-1] == [401] * live_server.settings.login_max_failures
    assert codes[-1] == 429
    right = httpx.post(url, data={"username": "admin", "password": ADMIN_PASSWORD})
    assert right.status_code == 429 and "Retry-After" in right.headers


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"status_admin_password": None}, "STATUS_ADMIN_PASSWORD"),
        ({"status_jwt_secret": None}, "STATUS_JWT_SECRET"),
        ({"status_jwt_secret": "short"}, "STATUS_JWT_SECRET"),
    ],
)
def test_server_refuses_to_start_without_secrets(tmp_path, over, needle) -> None:  # type: ignore[no-untyped-def]
    from statusdash.settings import MissingSecretError

    with pytest.raises(MissingSecretError, match=needle) as err:
        create_app(make_settings(tmp_path, **over))
    assert "make setup" in str(err.value)
