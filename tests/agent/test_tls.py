"""The agent over real mTLS to the real server: delivery, and a refused handshake explained."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from statusdash.agent.config import AgentConfig
from statusdash.agent.runner import Agent
from statusdash.pki.ca import init_ca, issue_client_cert, issue_server_cert
from statusdash.pki.check import utcnow
from tests.agent.agentproc import stored
from tests.conftest import Live, RunningServer, make_settings


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    v = tmp_path_factory.mktemp("vault")
    init_ca(v)
    issue_server_cert(v, ["127.0.0.1", "localhost"])
    issue_client_cert(v, "web-1")
    now = utcnow()
    issue_client_cert(
        v, "old-1", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    other = tmp_path_factory.mktemp("other-vault")
    init_ca(other, cn="someone else's CA")
    issue_client_cert(other, "web-1")
    (v / "foreign").mkdir()
    for ext in ("crt", "key"):
        (v / "foreign" / f"web-1.{ext}").write_bytes((other / f"clients/web-1.{ext}").read_bytes())
    return v


@pytest.fixture
def mtls_server(vault: Path, tmp_path: Path) -> Iterator[Live]:
    server = RunningServer(make_settings(tmp_path / "data", mtls_enabled=True, vault_path=vault))
    server.start()
    try:
        yield Live(server)
    finally:
        server.stop()


def once(live: Live, tmp_path: Path, cert: Path, key: Path, vault: Path) -> tuple[int, str]:
    cfg = AgentConfig(
        server_url=live.url,
        host_id="web-1",
        ca=vault / "ca" / "ca.crt",
        cert=cert,
        key=key,
        spool_dir=tmp_path / "spool",
        timeout_s=5,
    )
    return Agent(cfg).once()


def test_agent_certificate_delivers_over_mtls(
    mtls_server: Live, vault: Path, tmp_path: Path
) -> None:
    clients = vault / "clients"
    code, message = once(mtls_server, tmp_path, clients / "web-1.crt", clients / "web-1.key", vault)
    assert code == 0, message
    assert len(stored(mtls_server.settings.db_path)) == 1


@pytest.mark.parametrize(
    ("cert", "key", "cause"),
    [
        ("clients/old-1.crt", "clients/old-1.key", "expired"),
        ("foreign/web-1.crt", "foreign/web-1.key", "was not issued by the CA"),
        ("clients/web-1.crt", "clients/old-1.key", "does not match the certificate"),
    ],
)
def test_refused_handshake_names_the_likely_cause(
    mtls_server: Live,
    vault: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    cert: str,
    key: str,
    cause: str,
) -> None:
    with caplog.at_level(logging.WARNING):
        code, message = once(mtls_server, tmp_path, vault / cert, vault / key, vault)
    assert code == 1
    if cause == "does not match the certificate":  # OpenSSL refuses it before connecting
        assert message.startswith("cannot load the TLS files") and cause in message
        return
    assert "not delivered" in message and "spooled" in message
    assert "probably refused our client certificate" in message
    assert cause in message
    assert "probably refused our client certificate" in caplog.text
    assert stored(mtls_server.settings.db_path) == []
