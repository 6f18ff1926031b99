"""The public status page over a real server: off by default, public when on, what it shows
from real reports and events, what it never shows, and its config file."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from statusdash.server.app import create_app
from statusdash.server.auth import api_routes, login_route
from statusdash.server.statuspage.config import StatusPageConfigError, load_config
from tests.conftest import Live, make_settings
from tests.hostile import ESCAPES, SHOWN_ESCAPES, unsafe
from tests.server.harness import wait_for
from tests.server.status_page_harness import (
    HOSTS,
    SECRET_CPU,
    SECRET_ERROR,
    StartPage,
    event,
    page_json,
    seed,
    status_page,
    yesterday_start,
)
from tests.server.test_auth import ENROLL

__all__ = ["status_page"]  # the fixture
PUBLIC = {"/health", "/status", "/status.json"}


def test_off_by_default_the_page_does_not_exist(live_server: Live) -> None:
    assert not live_server.settings.status_page
    for path in ("/status", "/status.json"):
        assert httpx.get(live_server.url + path).status_code == 404
    assert not [p for _, p, _ in api_routes(live_server.server.app) if p.startswith("/status")]


def test_on_the_page_is_public_and_every_other_route_still_refuses(
    status_page: StartPage,
) -> None:
    h = status_page()
    routes = api_routes(h.server.app)
    assert {"/status", "/status.json"} <= {p for _, p, _ in routes}
    for kind, path, calls in routes:
        url = h.live.url + path.replace("{host}", "web-1")
        if login_route in calls or path in ENROLL:  # anonymous by nature (test_auth walks them)
            continue
        if path in PUBLIC:
            assert httpx.get(url).status_code == 200, path
        elif kind == "http":
            codes = {httpx.request(m, url).status_code for m in ("GET", "POST")}
            assert codes <= {401, 403, 405}, (path, codes)
    r = httpx.get(h.live.url + "/status")
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "<script" not in r.text
    assert r.headers["content-encoding"] == "gzip"  # httpx asks for gzip, as browsers do
    plain = httpx.get(h.live.url + "/status.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json()["title"] == "Example <Corp> & Co status"


def test_the_page_says_what_the_state_says(status_page: StartPage) -> None:
    h = status_page()
    seed(h)
    body = page_json(h)
    assert body["title"] == "Example <Corp> & Co status"
    assert body["status"] == "down" and body["headline"] == "Major outage"
    services = {s["name"]: s["status"] for s in body["services"]}
    assert services == {"Website": "up", "Database": "down"}
    groups = {g["name"]: g for g in body["groups"]}
    assert groups["Web"]["status"] == "degraded"  # web-1 up, web-2 silent
    assert groups["Databases"]["status"] == "up"
    [incident] = body["incidents"]  # postgres is public; the CPU alert on db-1 is not
    assert incident["title"] == "Database is failing"
    assert incident["groups"] == ["Databases"] and incident["host"] is None
    # The bars: db-1 reported every hour of yesterday and nothing before it.
    days = {d["date"]: d for d in groups["Databases"]["availability"]["days"]}
    assert len(days) == 90
    yesterday = yesterday_start().date()
    assert days[yesterday.isoformat()]["percent"] == 100.0
    assert days[yesterday.isoformat()]["state"] == "up"
    older = [d for date, d in days.items() if date < yesterday.isoformat()]
    assert len(older) == 88 and all(d["percent"] is None for d in older)
    assert all(d["state"] == "nodata" for d in older)
    html = httpx.get(h.live.url + "/status").text
    assert f'title="{yesterday.isoformat()}: 100.00 %"' in html
    assert "Example &lt;Corp&gt; &amp; Co status" in html  # escaped, never markup


def test_it_reveals_no_host_address_value_or_error(status_page: StartPage) -> None:
    h = status_page()
    seed(h)
    for path in ("/status", "/status.json"):
        text = httpx.get(h.live.url + path).text
        for secret in (*HOSTS, "10.20.30.40", "127.0.0.1", "connection refused", "Debian"):
            assert secret not in text, (path, secret)
        assert not re.search(rf"{SECRET_CPU}|97\.2|97\.3", text), path


def test_host_names_appear_only_when_told(status_page: StartPage) -> None:
    h = status_page(status_page_show_hosts=True)
    seed(h)
    body = page_json(h)
    web = next(g for g in body["groups"] if g["name"] == "Web")
    assert web["hosts"] == [{"name": "web-1", "status": "up"}, {"name": "web-2", "status": "down"}]
    assert body["incidents"][0]["host"] == "db-1"
    html = httpx.get(h.live.url + "/status").text
    assert 'data-host="web-2"' in html
    assert SECRET_ERROR not in html and "10.20.30.40" not in html


def test_names_agents_report_are_text_never_markup_or_controls(status_page: StartPage) -> None:
    h = status_page(config=None)
    name = "svc<script>alert(1)</script>" + ESCAPES
    agent = h.live.agent("web-1")
    assert agent.post("/api/events", json=event(name, False)).status_code == 200
    wait_for(lambda: page_json(h)["incidents"], what="the service incident")
    body = page_json(h)
    assert [s["name"] for s in body["services"]] == ["svc<script>alert(1)</script>" + SHOWN_ESCAPES]
    html = httpx.get(h.live.url + "/status").text
    assert "<script" not in html and "svc&lt;script&gt;" in html
    assert unsafe(html) == [] and unsafe(httpx.get(h.live.url + "/status.json").text) == []


def test_without_a_config_every_service_and_one_group(status_page: StartPage) -> None:
    h = status_page(config=None)
    seed(h)
    body = page_json(h)
    assert body["title"] == "Status"
    assert [s["name"] for s in body["services"]] == ["nginx", "postgres"]
    assert [g["name"] for g in body["groups"]] == ["All hosts"]
    assert body["groups"][0]["status"] == "degraded"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("title = ", "not valid TOML"),
        ("colour = 'red'", "colour: Extra inputs are not permitted"),
        ("[[groups]]\nname = 'Web'\nhosts = []", "groups[0].hosts"),
        ("[[groups]]\nname='A'\nhosts=['a*']\n[[groups]]\nname='A'\nhosts=['b*']", "two groups"),
        ("[[services]]\nlabel = 'x'", "services[0].name: Field required"),
        ("services = []", "services: Tuple should have at least 1 item"),
    ],
)
def test_a_bad_config_file_is_one_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "page.toml"
    path.write_text(text)
    with pytest.raises(StatusPageConfigError, match=re.escape(needle)):
        load_config(path)


def test_a_bad_config_file_stops_the_server_from_starting(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", status_page=True, status_page_config=tmp_path / "missing.toml"
    )
    with pytest.raises(StatusPageConfigError, match=r"missing\.toml: No such file"):
        create_app(settings)
    yaml_path = tmp_path / "page.yaml"
    yaml_path.write_text("title: x\n")
    with pytest.raises(StatusPageConfigError, match=r"use a \.toml file"):
        load_config(yaml_path)


def test_over_mtls_the_page_needs_no_client_certificate(
    tmp_path: Path, vault_template: Path
) -> None:
    import shutil

    from tests.conftest import RunningServer, TlsLive

    vault = tmp_path / "vault"
    shutil.copytree(vault_template, vault)
    settings = make_settings(
        tmp_path / "data", mtls_enabled=True, vault_path=vault, status_page=True
    )
    server = RunningServer(settings).start()
    try:
        live = TlsLive(server, vault=vault)
        with live.client(None) as anonymous:
            assert anonymous.get("/status.json").json()["title"] == "Status"
            assert anonymous.get("/status").status_code == 200
            assert anonymous.get("/api/hosts").status_code == 401
    finally:
        server.stop()
