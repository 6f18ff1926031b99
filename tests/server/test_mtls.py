"""Trust with real TLS handshakes on a loopback port: who may send, who may read, who is refused."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from unittest.mock import ANY

import httpx
import pytest

from statusdash.pki.ca import init_ca, issue_client_cert, revoke
from statusdash.pki.check import load_cert, utcnow
from statusdash.tlsclient import client_context
from tests.conftest import TlsLive, make_report


def stored(live: TlsLive) -> int:
    with sqlite3.connect(live.settings.db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])


def test_good_agent_is_accepted_on_one_connection(tls_server: TlsLive) -> None:
    with tls_server.client("web-1") as agent:
        for _ in range(3):
            r = agent.post("/api/metrics/report", json=make_report("web-1"))
            assert r.json() == {"accepted": 1, "duplicates": 0, "high_water": ANY}
    assert stored(tls_server) == 3


def test_report_for_another_host_than_the_cn_is_403(tls_server: TlsLive) -> None:
    with tls_server.client("web-1") as agent:
        r = agent.post("/api/metrics/report", json=make_report("db-1"))
    assert r.status_code == 403 and r.json()["error"] == "host_mismatch"
    assert stored(tls_server) == 0


def test_roles_are_enforced_both_ways(tls_server: TlsLive) -> None:
    with tls_server.client("viewer") as viewer:
        assert viewer.get("/api/hosts").status_code == 200
        r = viewer.post("/api/metrics/report", json=make_report("viewer"))
        assert r.status_code == 403
    with tls_server.client("web-1") as agent:
        r = agent.get("/api/hosts")
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert stored(tls_server) == 0


def test_no_certificate_cannot_ingest_but_a_token_reads(tls_server: TlsLive) -> None:
    with tls_server.client(None) as anon:
        r = anon.post("/api/metrics/report", json=make_report("web-1"))
        assert r.status_code == 401
        token = anon.post(
            "/api/auth/token", data={"username": "admin", "password": "test-admin-password-123"}
        ).json()["access_token"]
        ok = anon.get("/api/hosts", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    assert stored(tls_server) == 0


def test_api_keys_are_refused_while_mtls_is_on(tls_server: TlsLive) -> None:
    key = tls_server.api_key("web-1")
    with tls_server.client(None, headers={"X-API-Key": key}) as c:
        r = c.post("/api/metrics/report", json=make_report("web-1"))
    assert r.status_code == 401 and "certificate" in r.json()["detail"]


def _refused(live: TlsLive, ctx: object) -> None:
    c = httpx.Client(base_url=live.url, verify=ctx, timeout=5)  # type: ignore[arg-type]
    with c, pytest.raises(httpx.TransportError):
        c.post("/api/metrics/report", json=make_report("web-1"))


def test_bad_certificates_are_refused_at_the_handshake(tls_server: TlsLive, tmp_path: Path) -> None:
    vault = tls_server.vault
    ca = vault / "ca" / "ca.crt"
    now = utcnow()
    expired = issue_client_cert(
        vault,
        "old-1",
        "agent",
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    future = issue_client_cert(
        vault,
        "new-1",
        "agent",
        not_before=now + timedelta(days=1),
        not_after=now + timedelta(days=30),
    )
    other = make_other_ca(tmp_path / "other")
    cases = {
        "expired": client_context(ca, expired.cert_path, expired.key_path),
        "not yet valid": client_context(ca, future.cert_path, future.key_path),
        "other CA": client_context(
            ca, other / "clients" / "web-1.crt", other / "clients" / "web-1.key"
        ),
        "server cert as client": client_context(
            ca, vault / "server" / "status.crt", vault / "server" / "status.key"
        ),
    }
    for name, ctx in cases.items():
        try:
            _refused(tls_server, ctx)
        except BaseException as exc:  # pragma: no cover - names the failing case
            raise AssertionError(f"{name} was not refused") from exc
    assert stored(tls_server) == 0


def make_other_ca(vault: Path) -> Path:
    init_ca(vault, cn="someone else's CA")
    issue_client_cert(vault, "web-1", "agent")
    return vault


def test_revoked_certificate_is_refused_even_on_an_open_connection(tls_server: TlsLive) -> None:
    import time

    server_tls = tls_server.server.ctx.tls
    assert server_tls is not None
    watcher = server_tls.watcher
    serial = load_cert(tls_server.vault / "clients" / "web-1.crt").serial_number
    with tls_server.client("web-1") as agent:
        assert agent.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
        revoke(tls_server.vault, "web-1")  # what `statusdash certs revoke web-1` does
        deadline = time.monotonic() + 10
        while not watcher.is_revoked(serial):
            assert time.monotonic() < deadline, "the server never picked up the revocation"
            time.sleep(0.05)
        r = agent.post("/api/metrics/report", json=make_report("web-1"))  # same connection
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    ctx = client_context(
        tls_server.vault / "ca" / "ca.crt",
        tls_server.vault / "clients" / "web-1.crt",
        tls_server.vault / "clients" / "web-1.key",
    )
    _refused(tls_server, ctx)  # a new handshake is refused by the reloaded CRL
    with tls_server.client("db-1") as other:  # everybody else carries on
        assert other.post("/api/metrics/report", json=make_report("db-1")).status_code == 200
    assert stored(tls_server) == 2
