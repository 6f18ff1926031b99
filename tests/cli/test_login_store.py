"""Issue 11, item 17: stored logins are keyed by the normalized URL and remember their CA.

A login made in one directory with a relative ``--ca`` and an odd spelling of the URL works
from another directory with none of them; the first token-file shape still works; the file
stays 0600, through the TUI's renewals too.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.client import TokenStore
from statusdash.errors import Invalid
from statusdash.reach import normalize_url
from statusdash.schema import HostSummary
from tests.conftest import ADMIN_PASSWORD, TlsLive, make_report

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("client_env")


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("https://127.0.0.1:5000", "https://127.0.0.1:5000"),
        ("HTTPS://Status.Example.ORG:5000/", "https://status.example.org:5000"),
        ("https://status.example.org", "https://status.example.org:443"),
        ("http://status.example.org/api/", "http://status.example.org:80"),
        ("  https://[::1]:5000/x?y#z ", "https://[::1]:5000"),
    ],
)
def test_urls_normalize_to_one_key(given: str, key: str) -> None:
    assert normalize_url(given) == key
    assert normalize_url(key) == key  # a key is its own normal form


@pytest.mark.parametrize("bad", ["localhost:5000", "ftp://host:21", "https://", "https://h:99999"])
def test_a_url_that_is_no_server_is_refused(bad: str) -> None:
    with pytest.raises(Invalid):
        normalize_url(bad)


def _agent_report(live: TlsLive, host: str) -> None:
    with live.client(host) as agent:
        agent.post("/api/metrics/report", json=make_report(host)).raise_for_status()


def _token(live: TlsLive) -> str:
    with live.client(None) as http:
        form = {"username": "admin", "password": ADMIN_PASSWORD}
        return str(http.post("/api/auth/token", data=form).json()["access_token"])


def test_a_login_in_one_directory_works_from_another(
    tls_server: TlsLive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _agent_report(tls_server, "web-1")
    port = tls_server.url.rsplit(":", 1)[1]
    here = tmp_path / "ops"
    (here / "certs").mkdir(parents=True)
    (here / "certs" / "ca.crt").write_bytes((tls_server.vault / "ca" / "ca.crt").read_bytes())
    monkeypatch.chdir(here)
    spelled = f"HTTPS://LocalHost:{port}/"  # upper case, trailing slash: one server
    r = runner.invoke(
        app,
        ["login", "--server", spelled, "--ca", "certs/ca.crt", "--password-stdin"],
        input=ADMIN_PASSWORD + "\n",
    )
    assert r.exit_code == 0, r.output
    key = f"https://localhost:{port}"
    assert f"logged in to {key}" in r.stdout

    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # no certs/ here, no .env, no --server, no --ca
    for args in ([], ["--server", key], ["--server", f"https://localhost:{port}"]):
        r = runner.invoke(app, ["hosts", "ls", "--json", *args])
        assert r.exit_code == 0, r.stderr
        assert [HostSummary.model_validate(h).host for h in json.loads(r.stdout)] == ["web-1"]

    store = tmp_path / "config" / "statusdash" / "token.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    data = json.loads(store.read_text())
    assert data["version"] == 2 and data["default"] == key
    assert data["logins"][key]["ca"] == str(here / "certs" / "ca.crt")  # absolute


def test_the_first_token_file_shape_still_works(
    tls_server: TlsLive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``{URL: {"token", "expires_at"}}`` as written before: read, then rewritten as version 2."""
    _agent_report(tls_server, "db-1")
    store = tmp_path / "config" / "statusdash" / "token.json"
    store.parent.mkdir(parents=True)
    old = {f"{tls_server.url}/": {"token": _token(tls_server), "expires_at": time.time() + 600}}
    store.write_text(json.dumps(old))
    store.chmod(0o600)
    ca = str(tls_server.vault / "ca" / "ca.crt")
    r = runner.invoke(app, ["hosts", "ls", "--json", "--server", tls_server.url, "--ca", ca])
    assert r.exit_code == 0, r.stderr
    assert [h["host"] for h in json.loads(r.stdout)] == ["db-1"]

    TokenStore(store).save(tls_server.url, "renewed", 60)  # as the TUI's renewal does
    data = json.loads(store.read_text())
    assert data["version"] == 2 and list(data["logins"]) == [tls_server.url]
    assert data["logins"][tls_server.url]["token"] == "renewed"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600


def test_a_renewal_keeps_the_ca_and_a_new_login_replaces_it(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "token.json")
    ca = tmp_path / "ca.crt"
    store.save("https://h:5000", "one", 60, ca, make_default=True)
    store.save("HTTPS://H:5000/", "two", 60)  # a renewal: no CA given, the kept one stays
    login = store.entry("https://h:5000")
    assert login is not None and (login.token, login.ca) == ("two", ca)
    store.save("https://h:5000", "three", 60, None)  # a login that trusts the system store
    login = store.entry("https://h:5000")
    assert login is not None and login.ca is None
    assert store.default_server() == "https://h:5000"
    assert store.load("https://other:5000") is None


def test_an_expired_entry_is_kept_but_not_loaded(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "token.json")
    store.save("https://h:5000", "gone", -1)
    login = store.entry("https://h:5000")
    assert login is not None and login.expired
    assert store.load("https://h:5000") is None


def test_an_explicit_port_is_kept_even_when_odd() -> None:
    assert normalize_url("https://h:0") == "https://h:0"
    assert normalize_url("http://H:443") == "http://h:443"  # not the scheme's default: kept
