"""The systemd unit ``agent install-service`` writes: an unprivileged, sandboxed agent whose
key systemd hands over; parsed as systemd reads it, and verified by systemd-analyze if present."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.agent.agentproc import CLI, clean_env

SERVICE = [*CLI[:-1], "install-service"]
SRC = str(Path(__file__).resolve().parents[2] / "src")  # this worktree's code, not main's
SANDBOX = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "StateDirectory": "statusdash",
    "StateDirectoryMode": "0700",
    "UMask": "0077",
    "RestrictSUIDSGID": "yes",
}


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file: every key with all its values in order (keys may repeat)."""
    out: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], defaultdict(list))
            continue
        assert section is not None and "=" in line, f"not a unit line: {raw!r}"
        key, _, value = line.partition("=")
        section[key.strip()].append(value.strip())
    return out


def install(tmp_path: Path, *args: str) -> tuple[dict[str, dict[str, list[str]]], Path, str]:
    unit = tmp_path / "statusdash-agent.service"
    cmd = [*SERVICE, "--unit-file", str(unit), "--env-file", str(tmp_path / "agent.env"), *args]
    env = clean_env() | {"PYTHONPATH": SRC}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return parse_unit(unit.read_text()), unit, out.stdout


@pytest.fixture
def certs(tmp_path: Path, vault_template: Path) -> Path:
    shutil.copytree(vault_template, tmp_path / "certs")
    return tmp_path / "certs"


def test_the_unit_runs_the_agent_as_a_dynamic_user_without_capabilities(
    tmp_path: Path, certs: Path
) -> None:
    unit, _, hint = install(tmp_path, "--certs-dir", str(certs), "--host-id", "web-1")
    svc = unit["Service"]
    assert svc["User"] == ["statusdash"] and svc["DynamicUser"] == ["yes"]
    for key, value in SANDBOX.items():
        assert svc[key] == [value], key
    assert svc["CapabilityBoundingSet"] == [""] and svc["AmbientCapabilities"] == [""]
    assert svc["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]  # D-Bus, TCP
    # the key stays root's: systemd reads it and hands a copy to the service alone
    assert sorted(svc["LoadCredential"]) == [
        f"ca.crt:{certs / 'ca/ca.crt'}",
        f"client.crt:{certs / 'clients/web-1.crt'}",
        f"client.key:{certs / 'clients/web-1.key'}",
    ]
    (exec_start,) = svc["ExecStart"]
    assert exec_start.endswith("agent run --ca %d/ca.crt --cert %d/client.crt --key %d/client.key")
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "useradd" not in hint  # a dynamic user needs no account


def test_a_named_user_is_a_static_one_and_root_is_explicit(tmp_path: Path) -> None:
    named, _, hint = install(tmp_path, "--user", "sdagent")
    assert named["Service"]["User"] == ["sdagent"] and "DynamicUser" not in named["Service"]
    assert "useradd --system" in hint and "readable by sdagent" in hint
    (tmp_path / "agent.env").unlink()
    root, _, _ = install(tmp_path, "--user", "root")
    assert "User" not in root["Service"] and "DynamicUser" not in root["Service"]
    assert root["Service"]["CapabilityBoundingSet"] == [""]  # root, but without capabilities


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path, certs: Path) -> None:
    _, unit, _ = install(tmp_path, "--certs-dir", str(certs), "--host-id", "web-1")
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr


def test_the_default_spool_is_the_units_state_directory(tmp_path: Path) -> None:
    code = "from statusdash.agent.config import default_spool_dir; print(default_spool_dir())"
    env = clean_env() | {"STATE_DIRECTORY": str(tmp_path / "state"), "PYTHONPATH": SRC}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == str(tmp_path / "state" / "spool"), out.stderr
