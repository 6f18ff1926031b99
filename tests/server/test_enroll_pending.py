"""A host id whose current certificate is held by another key waits for an operator: nothing is
issued until ``enroll approve``; the agent polls with backoff and then gets its certificate."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from statusdash.pki.check import load_cert, load_key
from tests.agent.agentproc import clean_env
from tests.conftest import TlsLive
from tests.server.enroll_helpers import (
    STATUSDASH,
    csr_for,
    enroll_cli,
    issued,
    new_token,
    operator_env,
    vault_certs,
)


@pytest.fixture
def live(tls_server: TlsLive, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TlsLive:
    operator_env(tls_server, monkeypatch, tmp_path)
    return tls_server


def pending_hosts() -> list[str]:
    r = enroll_cli("pending", "--json")
    assert r.exit_code == 0, r.output
    return [p["host"] for p in json.loads(r.stdout)]


def test_a_held_host_id_waits_for_approval_then_the_agent_gets_its_certificate(
    live: TlsLive, tmp_path: Path
) -> None:
    held = load_cert(live.vault / "clients" / "web-1.crt")  # the fixture's web-1, its own key
    t = new_token("--hosts", "web-*")
    agent_dir = tmp_path / "agent-certs"
    cmd = [
        *STATUSDASH, "agent", "enroll", "--server", live.url, "--token", t["token"],
        "--host-id", "web-1", "--certs-dir", str(agent_dir), "--ca-fingerprint",
        t["ca_fingerprint"],
    ]  # fmt: skip
    env = {**clean_env(), "ENROLL_POLL_MAX_S": "1", "ENROLL_WAIT_S": "120"}
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while pending_hosts() != ["web-1"]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the request never showed as pending"
            time.sleep(0.2)
        time.sleep(1.5)  # the agent polls meanwhile: still nothing issued
        assert proc.poll() is None
        assert load_cert(live.vault / "clients" / "web-1.crt").serial_number == held.serial_number
        assert issued(live.settings.db_path) == []
        assert not (agent_dir / "clients").exists()
        approved = enroll_cli("approve", "web-1")
        assert approved.exit_code == 0, approved.output
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "waiting for approval" in err and "enroll approve web-1" in err
    cert = load_cert(agent_dir / "clients" / "web-1.crt")
    assert cert.public_key() == load_key(agent_dir / "clients" / "web-1.key").public_key()
    assert load_cert(live.vault / "clients" / "web-1.crt").serial_number == cert.serial_number
    retired = vault_certs(live.vault)[f"web-1.{held.serial_number:x}.crt"]
    assert retired == held.serial_number  # replaced, not revoked: the operator decides
    assert not (live.vault / "clients" / "web-1.key").exists()  # it was the other key
    assert pending_hosts() == []


def test_approve_without_a_waiting_request_is_one_line(live: TlsLive) -> None:
    r = enroll_cli("approve", "web-1")
    assert r.exit_code == 1 and r.output.startswith("statusdash: no enrollment of 'web-1'")


def test_the_pending_queue_is_bounded(
    tls_server: TlsLive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import RunningServer, make_settings

    tls_server.server.stop()
    settings = make_settings(
        tmp_path / "data", mtls_enabled=True, vault_path=tls_server.vault, enroll_pending_max=1,
        status_port=tls_server.settings.status_port,
    )  # fmt: skip
    tls_server.server = RunningServer(settings).start()
    operator_env(tls_server, monkeypatch, tmp_path)
    t = new_token("--uses", "5")
    with tls_server.client(None) as c:
        first = c.post("/api/enroll", json={"token": t["token"], "csr": csr_for("web-1")[1]})
        assert first.status_code == 202, first.text
        second = c.post("/api/enroll", json={"token": t["token"], "csr": csr_for("db-1")[1]})
        assert second.status_code == 429 and "ENROLL_PENDING_MAX" in second.json()["detail"]
        poll = c.get(f"/api/enroll/requests/{first.json()['request_id']}")
        assert poll.status_code == 202 and poll.json()["status"] == "pending"
        assert c.get("/api/enroll/requests/unknown").status_code == 404
    assert pending_hosts() == ["web-1"]


def test_a_newer_request_replaces_a_waiting_one(live: TlsLive) -> None:
    t = new_token("--uses", "3", "--hosts", "web-*")
    with live.client(None) as c:
        first = c.post("/api/enroll", json={"token": t["token"], "csr": csr_for("web-1")[1]})
        second = c.post("/api/enroll", json={"token": t["token"], "csr": csr_for("web-1")[1]})
        assert (first.status_code, second.status_code) == (202, 202)
        assert pending_hosts() == ["web-1"]
        assert enroll_cli("approve", "web-1").exit_code == 0
        old = c.get(f"/api/enroll/requests/{first.json()['request_id']}")
        assert old.status_code == 409 and "newer enrollment" in old.json()["detail"]
        new = c.get(f"/api/enroll/requests/{second.json()['request_id']}")
        assert new.status_code == 200 and new.json()["status"] == "issued"
    assert issued(live.settings.db_path) == ["web-1"]
