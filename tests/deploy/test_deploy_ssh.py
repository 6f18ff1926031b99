"""``statusdash agent deploy`` against a real sshd on loopback and a real mTLS server.

The "remote" host is this machine reached over SSH: the deploy pushes the wheelhouse, makes a
venv under a temporary prefix, enrolls with a one-use token made in the server's database,
starts the agent with ``--start nohup`` (no systemd here) and waits for its first report.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.deploy.wheelhouse import Wheelhouse
from tests.agent.agentproc import clean_env
from tests.conftest import TlsLive
from tests.deploy.sshd import Sshd
from tests.server.enroll_helpers import issued, operator_env, rows

# one worker builds the wheelhouse and starts the sshd once for all of them
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy")]


@pytest.fixture
def prefixes(tmp_path: Path) -> Iterator[list[Path]]:
    """Prefixes a test deploys to; the agents started in them are stopped afterwards."""
    made: list[Path] = []
    yield made
    for prefix in made:
        pid_file = prefix / "agent.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)


def deploy(
    live: TlsLive, sshd: Sshd, house: Wheelhouse, prefix: Path, host: str, *extra: str,
    key: Path | None = None, target: str | None = None,
) -> Any:  # fmt: skip
    v = live.vault
    args = [
        "agent", "deploy", target or sshd.target, "--host-id", host,
        "--identity", str(key or sshd.user_key), "--known-hosts", str(sshd.known_hosts),
        "--server", live.url, "--ca", str(v / "ca" / "ca.crt"),
        "--cert", str(v / "clients" / "viewer.crt"), "--key", str(v / "clients" / "viewer.key"),
        "--prefix", str(prefix), "--wheelhouse", str(house.path), "--start", "nohup",
        "--interval", "1", *extra,
    ]  # fmt: skip
    return CliRunner().invoke(app, args)


def agents(live: TlsLive) -> dict[str, dict[str, Any]]:
    with live.client("viewer") as c:
        resp = c.get("/api/agents")
        assert resp.status_code == 200, resp.text
        return {a["host"]: a for a in resp.json()["agents"]}


def test_deploy_reports_then_redeploy_upgrades_and_keeps_identity(
    tls_server: TlsLive, sshd: Sshd, wheelhouse: Wheelhouse, next_wheelhouse: Wheelhouse,
    prefixes: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    operator_env(tls_server, monkeypatch, tmp_path)
    prefix = tmp_path / "opt" / "statusdash"
    prefixes.append(prefix)
    result = deploy(tls_server, sshd, wheelhouse, prefix, "deploy-1", "--tag", "role=web")
    assert result.exit_code == 0, result.output
    assert "statusdash 0.1.0 installed, enrolled, started (nohup), first report" in result.stdout
    assert issued(tls_server.settings.db_path) == ["deploy-1"]
    seen = agents(tls_server)["deploy-1"]
    assert seen["version"] == "0.1.0" and seen["behind"] is False
    assert seen["cert_not_after"] is not None and seen["spool_backlog"] is not None
    cert = prefix / "certs" / "clients" / "deploy-1.crt"
    key = prefix / "certs" / "clients" / "deploy-1.key"
    identity = (cert.read_bytes(), key.read_bytes())
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert (prefix / "VERSION").read_text().strip() == "0.1.0"
    first_pid = int((prefix / "agent.pid").read_text())

    result = deploy(tls_server, sshd, next_wheelhouse, prefix, "deploy-1")
    assert result.exit_code == 0, result.output
    assert "statusdash 0.1.1 upgraded from 0.1.0, identity kept" in result.stdout
    assert (prefix / "VERSION").read_text().strip() == "0.1.1"
    assert (cert.read_bytes(), key.read_bytes()) == identity  # same key, same certificate
    assert issued(tls_server.settings.db_path) == ["deploy-1"]  # no second enrollment
    assert int((prefix / "agent.pid").read_text()) != first_pid
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)  # the old agent was stopped
    assert agents(tls_server)["deploy-1"]["version"] == "0.1.1"
    listed = subprocess.run(
        [f"{prefix}/venv/bin/python", "-m", "pip", "list", "--format", "json"],
        env={k: v for k, v in clean_env().items() if k != "PYTHONPATH"},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert {p["name"]: p["version"] for p in json.loads(listed.stdout)}["statusdash"] == "0.1.1"

    # no systemd here: --start auto installs (nothing new to push or install) and says how
    result = deploy(tls_server, sshd, next_wheelhouse, prefix, "deploy-1", "--start", "auto")
    assert result.exit_code == 0, result.output
    assert "push 0 wheel(s)" in result.stderr
    assert "0.1.1 installed, identity kept, not started (no systemd): start it with" in (
        result.stdout
    )
    assert f"nohup {prefix}/venv/bin/statusdash agent run --server {tls_server.url}" in (
        result.stdout
    )


def test_wrong_key_is_one_line(
    tls_server: TlsLive, sshd: Sshd, wheelhouse: Wheelhouse, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    operator_env(tls_server, monkeypatch, tmp_path)
    result = deploy(tls_server, sshd, wheelhouse, tmp_path / "p", "deploy-2", key=sshd.wrong_key)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "failed at connect: SSH refused the login (" in line and "Permission denied" in line
    assert "Traceback" not in result.output
    assert not (tmp_path / "p").exists() and issued(tls_server.settings.db_path) == []


@pytest.mark.parametrize("where", ["port", "host"])
def test_wrong_host_or_port_is_one_line(
    where: str, tls_server: TlsLive, sshd: Sshd, wheelhouse: Wheelhouse, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.conftest import free_port

    operator_env(tls_server, monkeypatch, tmp_path)
    target = f"root@127.0.0.1:{free_port()}" if where == "port" else "root@no-such-host.invalid"
    t0 = time.monotonic()
    result = deploy(tls_server, sshd, wheelhouse, tmp_path / "p", "deploy-3", target=target)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    expected = "connection refused" if where == "port" else "cannot resolve host name"
    assert f"failed at connect: {expected}" in line, line
    assert time.monotonic() - t0 < 30


def test_python_too_old_is_one_line(
    tls_server: TlsLive, sshd: Sshd, wheelhouse: Wheelhouse, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    operator_env(tls_server, monkeypatch, tmp_path)
    prefix = tmp_path / "p"
    result = deploy(tls_server, sshd, wheelhouse, prefix, "deploy-4", key=sshd.old_python_key)
    assert result.exit_code == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "failed at python: " in line and "is Python 3.9.2, older than 3.11" in line, line
    assert not prefix.exists() and issued(tls_server.settings.db_path) == []


def test_all_deploys_in_parallel_and_sums_up_failures(
    tls_server: TlsLive, sshd: Sshd, wheelhouse: Wheelhouse, prefixes: list[Path],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.conftest import free_port

    operator_env(tls_server, monkeypatch, tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    prefixes.extend([a, b])
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(
        f"# two agents on the loopback sshd, one host that is not there\n"
        f"{sshd.target} fleet-a role=web prefix={a}\n"
        f"{sshd.target} fleet-b prefix={b}\n"
        f"root@127.0.0.1:{free_port()} fleet-c\n"
    )
    v = tls_server.vault
    result = CliRunner().invoke(app, [
        "agent", "deploy", "--all", str(hosts), "--parallel", "3",
        "--identity", str(sshd.user_key), "--known-hosts", str(sshd.known_hosts),
        "--server", tls_server.url, "--ca", str(v / "ca" / "ca.crt"),
        "--cert", str(v / "clients" / "viewer.crt"), "--key", str(v / "clients" / "viewer.key"),
        "--wheelhouse", str(wheelhouse.path), "--start", "nohup", "--interval", "1",
    ])  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "2 of 3 deployed"
    assert any("(fleet-a): statusdash 0.1.0 installed, enrolled" in line for line in lines)
    assert any("(fleet-b): statusdash 0.1.0 installed, enrolled" in line for line in lines)
    assert any("(fleet-c): failed at connect: connection refused" in line for line in lines)
    assert "[3/3 done]" in result.stderr  # the progress
    seen = agents(tls_server)
    assert seen["fleet-a"]["version"] == seen["fleet-b"]["version"] == "0.1.0"
    assert sorted(issued(tls_server.settings.db_path)) == ["fleet-a", "fleet-b"]
    tokens = rows(tls_server.settings.db_path, "SELECT hosts, uses_max, tags FROM enroll_tokens")
    by_host = {h: (uses, json.loads(tags)) for h, uses, tags in tokens}
    assert by_host["fleet-a"] == (1, {"role": "web"}) and by_host["fleet-b"][1] == {}
    assert "fleet-c" not in by_host  # no token made for a host that could not be reached
