"""The enrollment knobs and failure paths: ENROLL_CERT_DAYS shortens lifetimes, ENROLL_WAIT_S
bounds the wait for an approval, a server without the CA key consumes nothing, and an agent
whose renewal answer was lost renews again with the same key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from statusdash.pki.ca import issue_client_cert, make_csr
from statusdash.pki.check import load_cert, load_key
from statusdash.tlsclient import client_context
from tests.conftest import RunningServer, TlsLive, make_settings
from tests.server.enroll_helpers import (
    agent_enroll,
    csr_for,
    issued,
    new_token,
    operator_env,
    rows,
)


@pytest.fixture
def short(
    tls_server: TlsLive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TlsLive]:
    """The TLS server again, with ENROLL_CERT_DAYS=2."""
    tls_server.server.stop()
    settings = make_settings(
        tmp_path / "data", mtls_enabled=True, vault_path=tls_server.vault, enroll_cert_days=2,
        status_port=tls_server.settings.status_port,
    )  # fmt: skip
    tls_server.server = RunningServer(settings).start()
    operator_env(tls_server, monkeypatch, tmp_path)
    yield tls_server
    tls_server.server.stop()


def days(cert: x509.Certificate) -> float:
    return (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400


def test_enroll_cert_days_shortens_enrolled_and_renewed_certificates(short: TlsLive) -> None:
    t = new_token("--uses", "2")
    with short.client(None) as c:
        r = c.post("/api/enroll", json={"token": t["token"], "csr": csr_for("app-1")[1]})
    assert r.status_code == 200, r.text
    assert 1.99 < days(x509.load_pem_x509_certificate(r.json()["certificate"].encode())) < 2.01
    with short.client("db-1") as agent:  # a 365-day certificate from `certs issue`
        key = load_key(short.vault / "clients" / "db-1.key")
        renewed = agent.post("/api/enroll/renew", json={"csr": make_csr(key, "db-1").decode()})
    assert renewed.status_code == 200, renewed.text
    assert (
        1.99 < days(x509.load_pem_x509_certificate(renewed.json()["certificate"].encode())) < 2.01
    )


def test_enroll_wait_s_bounds_the_wait_for_an_approval(live: TlsLive, tmp_path: Path) -> None:
    t = new_token("--hosts", "web-*")
    out = agent_enroll(
        live, tmp_path, "--token", t["token"], "--host-id", "web-1", "--certs-dir",
        str(tmp_path / "c"), "--ca-fingerprint", t["ca_fingerprint"],
        ENROLL_WAIT_S="2", ENROLL_POLL_MAX_S="1",
    )  # fmt: skip
    assert out.returncode == 1
    assert "no approval within 2 s (ENROLL_WAIT_S)" in out.stderr
    assert issued(live.settings.db_path) == []
    assert not (tmp_path / "c" / "clients").exists()


@pytest.fixture
def live(tls_server: TlsLive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TlsLive:
    operator_env(tls_server, monkeypatch, tmp_path)
    return tls_server


def test_a_server_without_the_ca_key_consumes_nothing(live: TlsLive) -> None:
    t = new_token()
    (live.vault / "ca" / "ca.key").rename(live.vault / "ca" / "ca.key.away")
    with live.client(None) as c:
        r = c.post("/api/enroll", json={"token": t["token"], "csr": csr_for("app-1")[1]})
    assert r.status_code == 503 and r.json()["error"] == "no_ca", r.text
    assert rows(live.settings.db_path, "SELECT uses FROM enroll_tokens") == [(0,)]
    assert rows(live.settings.db_path, "SELECT count(*) FROM enroll_requests") == [(0,)]


def test_a_lost_renewal_answer_can_be_asked_again_with_the_same_key(live: TlsLive) -> None:
    issue_client_cert(live.vault, "app-3")
    crt, key_path = live.vault / "clients" / "app-3.crt", live.vault / "clients" / "app-3.key"
    old_pem, key = crt.read_bytes(), load_key(key_path)
    old_dir = live.vault.parent / "old-app-3"
    old_dir.mkdir()
    (old_dir / "app-3.crt").write_bytes(old_pem)
    csr = make_csr(key, "app-3").decode()
    ca = live.vault / "ca" / "ca.crt"
    with httpx.Client(
        base_url=live.url, verify=client_context(ca, old_dir / "app-3.crt", key_path), timeout=10
    ) as c:
        first = c.post("/api/enroll/renew", json={"csr": csr})  # its answer "lost"
        assert first.status_code == 200, first.text
        again = c.post("/api/enroll/renew", json={"csr": csr})  # the old certificate again
        assert again.status_code == 200, again.text
        assert again.json()["serial"] != first.json()["serial"]
    current = load_cert(crt)
    assert current.public_key() == key.public_key()
    assert f"{current.serial_number:x}" == again.json()["serial"]
