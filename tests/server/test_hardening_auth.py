"""Issue 10 items 8 and 9: the token endpoint and the routes' redirects against a hostile peer.

A real server on loopback; the login form sent raw where the test needs a body httpx would
not build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from statusdash.server.runner import ServerConfigError, uvicorn_config
from tests.conftest import ADMIN_PASSWORD, Live, RunningServer, make_settings

GOOD = {"username": "admin", "password": ADMIN_PASSWORD}


def token_url(live: Live) -> str:
    return f"{live.url}/api/auth/token"


def fail_logins(live: Live, **headers: str) -> None:
    """Use up the throttle's allowance of failures."""
    for i in range(live.settings.login_max_failures):
        r = httpx.post(
            token_url(live), data={"username": "admin", "password": f"x{i}"}, headers=headers
        )
        assert r.status_code == 401, r.text


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Live]:
    """A server behind a trusted proxy on loopback (TRUSTED_PROXIES=127.0.0.0/8)."""
    server = RunningServer(make_settings(tmp_path / "data", trusted_proxies="127.0.0.0/8")).start()
    try:
        yield Live(server)
    finally:
        server.stop()


def test_a_login_body_past_the_cap_is_refused_before_parsing(live_server: Live) -> None:
    cap = live_server.settings.token_max_body_bytes
    big = {"username": "admin", "password": "p" * (cap + 10)}
    r = httpx.post(token_url(live_server), data=big)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds on the stream too
        yield b"username=admin&password="
        for _ in range(cap // 512 + 2):
            yield b"p" * 512

    streamed = httpx.post(
        token_url(live_server),
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("kwargs", "ctype"),
    [
        ({"json": GOOD}, "application/json"),
        ({"files": {"username": (None, "admin"), "password": (None, ADMIN_PASSWORD)}}, "multipart"),
        ({"content": b"username=admin", "headers": {"Content-Type": "text/plain"}}, "text/plain"),
    ],
)
def test_only_an_urlencoded_form_is_taken(
    live_server: Live, kwargs: dict[str, object], ctype: str
) -> None:
    r = httpx.post(token_url(live_server), **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 415, (ctype, r.text)
    assert r.json()["error"] == "unsupported_media_type"
    assert httpx.post(token_url(live_server), data=GOOD).status_code == 200


def test_bad_forms_get_a_json_4xx(live_server: Live) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = {
        b"username=admin": 422,
        b"username=admin&username=x&password=p": 422,
        b"username=admin&password=\xff\xfe": 400,
        b"&".join(b"f%d=1" % i for i in range(50)): 400,
    }
    for body, status in cases.items():
        r = httpx.post(token_url(live_server), content=body, headers=form)
        assert r.status_code == status, (body[:40], r.text)
        assert set(r.json()) >= {"error", "detail"}


def test_the_throttle_is_checked_before_the_body_is_read(live_server: Live) -> None:
    fail_logins(live_server)
    cap = live_server.settings.token_max_body_bytes
    for request in (
        {"json": GOOD},  # a type we refuse
        {"data": {"username": "admin", "password": "p" * (cap * 4)}},  # a body past the cap
        {"data": GOOD},  # even the right password
    ):
        r = httpx.post(token_url(live_server), **request)  # type: ignore[arg-type]
        assert r.status_code == 429, r.text
        assert "Retry-After" in r.headers


def test_x_forwarded_for_is_ignored_without_trusted_proxies(live_server: Live) -> None:
    for i in range(live_server.settings.login_max_failures):
        r = httpx.post(
            token_url(live_server),
            data={"username": "admin", "password": "wrong"},
            headers={"X-Forwarded-For": f"198.51.100.{i}"},
        )
        assert r.status_code == 401
    r = httpx.post(token_url(live_server), data=GOOD, headers={"X-Forwarded-For": "198.51.100.99"})
    assert r.status_code == 429, "a forged X-Forwarded-For escaped the throttle"


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(proxied: Live) -> None:
    fail_logins(proxied, **{"X-Forwarded-For": "203.0.113.5"})
    blocked = httpx.post(token_url(proxied), data=GOOD, headers={"X-Forwarded-For": "203.0.113.5"})
    assert blocked.status_code == 429
    # The client is the rightmost hop that is not a proxy: a forged left part changes nothing.
    spoofed = httpx.post(
        token_url(proxied), data=GOOD, headers={"X-Forwarded-For": "192.0.2.1, 203.0.113.5"}
    )
    assert spoofed.status_code == 429
    other = httpx.post(token_url(proxied), data=GOOD, headers={"X-Forwarded-For": "203.0.113.6"})
    assert other.status_code == 200


def test_uvicorn_proxy_headers_are_off_and_bad_trusted_proxies_are_refused(
    tmp_path: Path,
) -> None:
    assert uvicorn_config(make_settings(tmp_path / "a")).proxy_headers is False
    with pytest.raises(ServerConfigError, match="TRUSTED_PROXIES"):
        uvicorn_config(make_settings(tmp_path / "b", trusted_proxies="10.0.0.0/8, not-an-ip"))


def test_a_trailing_slash_is_not_redirected_to_the_host_header(live_server: Live) -> None:
    for path in ("/api/hosts/", "/api/alerts/", "/health/"):
        r = httpx.get(f"{live_server.url}{path}", headers={"Host": "evil.example"})
        assert not r.is_redirect, (path, r.status_code, r.headers.get("location"))
        assert "evil.example" not in r.headers.get("location", "")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
