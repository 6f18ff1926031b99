"""Enrollment against a real server on loopback with real TLS and our own PKI: a token, a key
made by the agent, a CSR signed, the CA pinned, and the agent pushing with what it got."""

from __future__ import annotations

import hashlib
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from statusdash.pki.check import issued_by, load_cert, load_key
from tests.agent.agentproc import CLI, clean_env, stored
from tests.conftest import TlsLive
from tests.server.enroll_helpers import (
    agent_enroll,
    enroll_cli,
    issued,
    new_token,
    operator_env,
    rows,
)


@pytest.fixture
def live(tls_server: TlsLive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TlsLive:
    operator_env(tls_server, monkeypatch, tmp_path)
    return tls_server


def test_token_to_enrolled_agent_pushing_a_stored_report(live: TlsLive, tmp_path: Path) -> None:
    import subprocess

    t = new_token("--hosts", "app-*", "--uses", "1", "--expires", "2h", "--tag", "env=prod")
    assert set(t) >= {"token", "ca_fingerprint", "id", "expires_at", "uses", "hosts"}
    der = ssl.PEM_cert_to_DER_cert((live.vault / "ca" / "ca.crt").read_text())
    assert t["ca_fingerprint"] == hashlib.sha256(der).hexdigest()
    assert (t["uses"], t["hosts"], t["tags"]) == (1, "app-*", {"env": "prod"})
    db = live.settings.db_path
    secret = t["token"].split("_", 2)[2]
    assert secret.encode() not in db.read_bytes()  # stored hashed, never the token
    (stored_hash,) = rows(db, "SELECT secret_hash FROM enroll_tokens WHERE token_id = ?", t["id"])
    assert stored_hash[0] == hashlib.sha256(secret.encode()).hexdigest()

    agent_dir = tmp_path / "agent-certs"
    out = agent_enroll(
        live, tmp_path, "--token", t["token"], "--host-id", "app-1",
        "--certs-dir", str(agent_dir), "--ca-fingerprint", t["ca_fingerprint"].upper(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    key_path, crt_path = agent_dir / "clients" / "app-1.key", agent_dir / "clients" / "app-1.crt"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = load_cert(crt_path)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "app-1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert issued_by(cert, load_cert(agent_dir / "ca" / "ca.crt"))
    assert cert.public_key() == load_key(key_path).public_key()
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 29.9 < life.total_seconds() / 86400 < 30.1  # ENROLL_CERT_DAYS
    assert not (live.vault / "clients" / "app-1.key").exists()  # the key stayed on the host
    assert load_cert(live.vault / "clients" / "app-1.crt").serial_number == cert.serial_number
    assert issued(db) == ["app-1"]

    run = subprocess.run(
        [*CLI, "--once", "--server", live.url, "--host-id", "app-1", "--certs-dir",
         str(agent_dir), "--spool-dir", str(tmp_path / "spool")],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(stored(db, "app-1")) == 1


def test_token_ls_and_revoke_show_the_state_without_the_secret(live: TlsLive) -> None:
    import json

    t = new_token("--uses", "3")
    listed = enroll_cli("token", "ls", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["state"], row["uses"], row["uses_max"]) == (t["id"], "active", 0, 3)
    assert t["token"] not in listed.stdout
    assert enroll_cli("token", "revoke", t["id"]).exit_code == 0
    (row,) = json.loads(enroll_cli("token", "ls", "--json").stdout)
    assert row["state"] == "revoked"
    unknown = enroll_cli("token", "revoke", "nope")
    assert unknown.exit_code == 1 and "no enrollment token" in unknown.output


def test_bad_token_options_are_one_line_usage_errors(live: TlsLive) -> None:
    for args in (["--expires", "soon"], ["--tag", "novalue"], ["--hosts", "Web 1"]):
        r = enroll_cli("token", "create", *args)
        assert r.exit_code in (1, 2), r.output
        assert r.output.startswith("statusdash: ") and "Traceback" not in r.output
    assert rows(live.settings.db_path, "SELECT count(*) FROM enroll_tokens") == [(0,)]


def test_a_wrong_fingerprint_is_refused_before_the_token_is_sent(
    live: TlsLive, tmp_path: Path
) -> None:
    t = new_token()
    agent_dir = tmp_path / "agent-certs"
    wrong = "ab" * 32
    out = agent_enroll(
        live, tmp_path, "--token", t["token"], "--host-id", "app-1",
        "--certs-dir", str(agent_dir), "--ca-fingerprint", wrong,
    )  # fmt: skip
    assert out.returncode == 1
    assert f"not the pinned {wrong}" in out.stderr and "the token was not sent" in out.stderr
    db = live.settings.db_path
    assert rows(db, "SELECT uses FROM enroll_tokens") == [(0,)]
    assert rows(db, "SELECT count(*) FROM enroll_requests") == [(0,)]
    assert not agent_dir.exists()  # not even the CA it was offered

    no_pin = agent_enroll(live, tmp_path, "--token", t["token"], "--certs-dir", str(agent_dir))
    assert no_pin.returncode == 2 and "--ca-fingerprint" in no_pin.stderr
    garbled = agent_enroll(live, tmp_path, "--token", t["token"], "--ca-fingerprint", "xyz")
    assert garbled.returncode == 2 and "64 hex digits" in garbled.stderr


def test_a_ca_already_on_disk_is_trusted_without_a_pin(live: TlsLive, tmp_path: Path) -> None:
    t = new_token()
    agent_dir = tmp_path / "agent-certs"
    (agent_dir / "ca").mkdir(parents=True)
    (agent_dir / "ca" / "ca.crt").write_bytes((live.vault / "ca" / "ca.crt").read_bytes())
    out = agent_enroll(
        live, tmp_path, "--token", t["token"], "--host-id", "app-2", "--certs-dir", str(agent_dir)
    )
    assert out.returncode == 0, out.stderr
    assert (agent_dir / "clients" / "app-2.crt").exists()
