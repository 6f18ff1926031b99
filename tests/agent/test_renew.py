"""Certificate renewal against a real server with real TLS: the daemon renews at 2/3 of its
certificate's life, keeps pushing after the old one expired; a revoked certificate cannot renew."""

from __future__ import annotations

import shutil
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from statusdash.agent.config import AgentConfig
from statusdash.agent.renew import RENEW_AT, Renewer, RenewError
from statusdash.pki.ca import issue_client_cert, make_csr, revoke
from statusdash.pki.check import load_cert, load_key, utcnow
from statusdash.tlsclient import client_context
from tests.agent.agentproc import AgentProc, stored, wait_for
from tests.conftest import TlsLive


def agent_files(live: TlsLive, host: str, dest: Path) -> Path:
    """The agent's own copy of the CA and of ``host``'s certificate and key (its layout)."""
    (dest / "ca").mkdir(parents=True, exist_ok=True)
    (dest / "clients").mkdir(exist_ok=True)
    shutil.copy(live.vault / "ca" / "ca.crt", dest / "ca" / "ca.crt")
    for ext in ("crt", "key"):
        shutil.copy(live.vault / "clients" / f"{host}.{ext}", dest / "clients" / f"{host}.{ext}")
    return dest


def config(live: TlsLive, host: str, certs: Path, tmp_path: Path) -> AgentConfig:
    return AgentConfig(
        server_url=live.url, host_id=host, ca=certs / "ca" / "ca.crt",
        cert=certs / "clients" / f"{host}.crt", key=certs / "clients" / f"{host}.key",
        spool_dir=tmp_path / "spool", timeout_s=10,
    )  # fmt: skip


def test_the_daemon_renews_and_pushes_on_after_the_old_certificate_expired(
    tls_server: TlsLive, tmp_path: Path
) -> None:
    now = utcnow()
    old = issue_client_cert(
        tls_server.vault, "app-5", not_before=now, not_after=now + timedelta(seconds=15)
    )
    certs = agent_files(tls_server, "app-5", tmp_path / "agent-certs")
    crt, key_file = certs / "clients" / "app-5.crt", certs / "clients" / "app-5.key"
    key_bytes = key_file.read_bytes()
    db = tls_server.settings.db_path
    agent = AgentProc(
        tmp_path, "--server", tls_server.url, "--host-id", "app-5", "--certs-dir", str(certs),
        "--interval", "0.5", "--spool-dir", str(tmp_path / "spool"),
    )  # fmt: skip
    try:
        wait_for(lambda: len(stored(db, "app-5")) >= 1, 30, "a first report")
        wait_for(lambda: load_cert(crt).serial_number != old.serial, 40, "the renewal")
        new = load_cert(crt)
        renewed_at = time.time()
        assert renewed_at >= old.not_before.timestamp() + RENEW_AT * 15 - 1  # not before 2/3
        assert key_file.read_bytes() == key_bytes  # the same key: only the certificate changed
        assert new.public_key() == load_key(key_file).public_key()
        days = (new.not_valid_after_utc - new.not_valid_before_utc).total_seconds() / 86400
        assert 29.9 < days < 30.1  # ENROLL_CERT_DAYS
        assert load_cert(tls_server.vault / "clients" / "app-5.crt").serial_number == (
            new.serial_number
        )
        wait_for(lambda: utcnow() > old.not_after + timedelta(seconds=1), 30, "the old expiry")
        # A restart closes the kept-alive connection: the next handshake must use the new one.
        tls_server.server.stop()
        tls_server.server.start()
        before = len(stored(db, "app-5"))
        wait_for(lambda: len(stored(db, "app-5")) >= before + 2, 60, "reports after the expiry")
    finally:
        agent.stop()
    assert "certificate renewed" in agent.log


def test_a_revoked_certificate_cannot_renew(tls_server: TlsLive, tmp_path: Path) -> None:
    issue_client_cert(tls_server.vault, "app-6")
    certs = agent_files(tls_server, "app-6", tmp_path / "agent-certs")
    cfg = config(tls_server, "app-6", certs, tmp_path)
    assert cfg.cert is not None and cfg.key is not None
    before = cfg.cert.read_bytes()
    ctx = client_context(cfg.ca, cfg.cert, cfg.key)
    csr = make_csr(load_key(cfg.key), "app-6").decode()
    with httpx.Client(base_url=tls_server.url, verify=ctx, timeout=10) as kept:
        assert kept.get("/api/enroll/ca").status_code == 200  # the connection is open
        revoke(tls_server.vault, "app-6")
        r = kept.post("/api/enroll/renew", json={"csr": csr})  # same connection, no new handshake
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    with pytest.raises(RenewError):  # a new connection: refused at the handshake or by the check
        Renewer(cfg).renew()
    assert cfg.cert.read_bytes() == before
    vault_cert = load_cert(tls_server.vault / "clients" / "app-6.crt")
    assert vault_cert.serial_number == load_cert(cfg.cert).serial_number  # nothing issued
    assert not list((tls_server.vault / "clients" / "retired").glob("app-6.*"))


def test_renewal_takes_a_new_key_and_refuses_other_hosts_and_old_certificates(
    tls_server: TlsLive, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    issue_client_cert(tls_server.vault, "app-7")
    certs = agent_files(tls_server, "app-7", tmp_path / "agent-certs")
    cfg = config(tls_server, "app-7", certs, tmp_path)
    assert cfg.cert is not None and cfg.key is not None
    fresh = ec.generate_private_key(ec.SECP256R1())
    with httpx.Client(
        base_url=tls_server.url, verify=client_context(cfg.ca, cfg.cert, cfg.key), timeout=10
    ) as c:
        other = c.post("/api/enroll/renew", json={"csr": make_csr(fresh, "web-1").decode()})
        assert other.status_code == 403 and other.json()["error"] == "host_mismatch"
        r = c.post("/api/enroll/renew", json={"csr": make_csr(fresh, "app-7").decode()})
        assert r.status_code == 200, r.text
        assert r.json()["ca"] == (tls_server.vault / "ca" / "ca.crt").read_text()
        again = c.post("/api/enroll/renew", json={"csr": make_csr(fresh, "app-7").decode()})
        assert again.status_code == 409  # the presented certificate is no longer the current one
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
    assert cert.public_key() == fresh.public_key()
    with tls_server.client("viewer") as viewer:
        assert viewer.post("/api/enroll/renew", json={"csr": "x"}).status_code == 403
    with tls_server.client(None) as anonymous:
        assert anonymous.post("/api/enroll/renew", json={"csr": "x"}).status_code == 401


def test_the_schedule_is_two_thirds_of_the_life(tls_server: TlsLive, tmp_path: Path) -> None:
    now = utcnow()
    issue_client_cert(
        tls_server.vault, "app-8", not_before=now, not_after=now + timedelta(seconds=300)
    )
    certs = agent_files(tls_server, "app-8", tmp_path / "agent-certs")
    cfg = config(tls_server, "app-8", certs, tmp_path)
    clock = [now.timestamp()]
    r = Renewer(cfg, clock=lambda: clock[0])
    assert abs(r.next_try - (now.timestamp() + 200)) < 1.5
    clock[0] += 190
    r.tick()
    assert r.renewals == 0 and r._thread is None  # not due: nothing started
    assert Renewer.for_config(AgentConfig(server_url="http://x", host_id="a")) is None


def test_the_daemon_reads_its_dates_without_cryptography(
    tls_server: TlsLive, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from statusdash.agent.renew import validity_of

    far = utcnow().replace(year=2061)  # past 2049: a GeneralizedTime
    for host, kw in (("app-9", {}), ("app-10", {"not_after": far})):
        issued = issue_client_cert(tls_server.vault, host, **kw)  # type: ignore[arg-type]
        v = validity_of(issued.cert_path.read_bytes())
        assert (v.not_before, v.not_after) == (
            issued.not_before.timestamp(),
            issued.not_after.timestamp(),
        )
        assert v.serial == issued.serial
    with pytest.raises(ValueError):
        validity_of(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    certs = agent_files(tls_server, "app-9", tmp_path / "agent-certs")
    code = (
        "import sys; from statusdash.agent.config import AgentConfig;"
        " from statusdash.agent.renew import Renewer;"
        " r = Renewer.for_config(AgentConfig.from_json(sys.argv[1])); assert r is not None;"
        " print('cryptography' in sys.modules)"
    )
    cfg = config(tls_server, "app-9", certs, tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code, cfg.to_json()], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
