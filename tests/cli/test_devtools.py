"""`make setup` and `make certs` (statusdash.devtools): fresh secrets, 0600, nothing overwritten."""

from __future__ import annotations

import shutil
import socket
import stat
from pathlib import Path

import pytest

from statusdash import devtools, hostid
from statusdash.pki.vault import list_certs, paths

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    monkeypatch.chdir(tmp_path)
    for name in ("STATUS_ADMIN_PASSWORD", "STATUS_JWT_SECRET", "STATUS_DATA_DIR", "VAULT_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_setup_writes_private_fresh_secrets_and_keeps_them(project: Path) -> None:
    devtools.setup()
    env = project / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    text = env.read_text()
    assert "__GENERATE__" not in text
    values = dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert len(values["STATUS_JWT_SECRET"]) >= 32 and len(values["STATUS_ADMIN_PASSWORD"]) >= 12
    assert (project / "data").is_dir() and (project / "vault" / "certs").is_dir()
    devtools.setup()  # a second run keeps what is there
    assert env.read_text() == text


def test_certs_makes_the_usual_set_once(project: Path) -> None:
    devtools.setup()
    devtools.certs()
    vault = project / "vault" / "certs"
    p = paths(vault)
    host = devtools.local_host_id()
    for f in (p.ca_key, p.server_key, p.client_key(host), p.client_key("viewer")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    roles = {r.name: r.role for r in list_certs(vault)}
    assert roles[host] == "agent" and roles["viewer"] == "viewer"
    ca_before = p.ca_cert.read_bytes()
    devtools.certs()  # idempotent: the CA and certificates are not replaced
    assert p.ca_cert.read_bytes() == ca_before


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("My Host!!", "my-host"),
        ("WEB-01.Example.ORG", "web-01.example.org"),
        ("--dev box--", "dev-box"),
        ("日本-host", "host"),
        ("x" * 80, "x" * 63),
        ("!!!", "localhost"),
        ("", "localhost"),
        ("_build box_", "build-box"),
        ("web-1\n", "web-1"),
    ],
)
def test_make_certs_names_the_host_as_the_agent_does(
    hostname: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate `make certs` issues is the one a plain `agent run` looks for."""
    from statusdash.cli.agent import _host_id  # what `agent run` without --host-id uses

    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    assert devtools.local_host_id() == _host_id(None) == expected
    assert hostid.is_valid(expected)
