"""``statusdash agent run`` and ``install-service`` through the command line."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from statusdash import wire
from tests.agent.agentproc import CLI, AgentProc, clean_env, spooled, wait_for
from tests.conftest import free_port

SERVICE = [*CLI[:-1], "install-service"]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env={**clean_env(), **env}, capture_output=True, text=True, timeout=60
    )


def test_once_dry_run_prints_a_valid_report_without_a_server(tmp_path: Path) -> None:
    out = run([*CLI, "--once", "--dry-run", "--host-id", "web-1", "--mount", "/tmp"], tmp_path)
    assert out.returncode == 0, out.stderr
    report = wire.decode_report(out.stdout, now=datetime.now(UTC), max_age=None)
    assert report.host == "web-1" and report.interval_s == 10.0
    assert report.cpu is not None and report.memory is not None and report.processes
    assert report.net is not None and report.net.rx_bytes_s is not None
    assert "/tmp" in {d.mount for d in report.disks}
    assert not list(tmp_path.iterdir())  # nothing spooled, nothing written


def test_dry_run_takes_settings_from_the_environment(tmp_path: Path) -> None:
    out = run(
        [*CLI, "--once", "--dry-run"],
        tmp_path,
        STATUSDASH_AGENT_HOST_ID="from-env",
        STATUSDASH_AGENT_INTERVAL="30",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["host"] == "from-env" and report["interval_s"] == 30.0


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    bad_host = run([*CLI, "--once", "--dry-run", "--host-id", "Web 1"], tmp_path)
    assert bad_host.returncode == 2 and "not a valid host id" in bad_host.stderr
    bad_url = run([*CLI, "--once", "--server", "ftp://x", "--api-key", "k"], tmp_path)
    assert bad_url.returncode == 2 and "must start with https://" in bad_url.stderr
    bad_interval = run([*CLI, "--interval", "0"], tmp_path)
    assert bad_interval.returncode == 2
    for out in (bad_host, bad_url):
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_the_agent_takes_its_host_id_by_the_one_rule(tmp_path: Path) -> None:
    import socket

    from statusdash import hostid

    out = run([*CLI, "--once", "--dry-run"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["host"] == hostid.from_hostname(socket.gethostname())
    newline = run([*CLI, "--once", "--dry-run", "--host-id", "web-1\n"], tmp_path)
    assert newline.returncode == 2 and "not a valid host id" in newline.stderr


def test_missing_credentials_say_how_to_get_some(tmp_path: Path) -> None:
    out = run(
        [
            *CLI,
            "--once",
            "--server",
            "https://127.0.0.1:9",
            "--host-id",
            "web-1",
            "--certs-dir",
            str(tmp_path / "vault"),
        ],
        tmp_path,
    )
    assert out.returncode == 1
    assert "no credentials for host 'web-1'" in out.stderr
    assert "statusdash certs issue web-1" in out.stderr and "Traceback" not in out.stderr
    missing = run(
        [
            *CLI,
            "--once",
            "--server",
            "https://127.0.0.1:9",
            "--host-id",
            "web-1",
            "--cert",
            str(tmp_path / "x.crt"),
            "--key",
            str(tmp_path / "x.key"),
        ],
        tmp_path,
    )
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_spool_in_use_by_another_agent(tmp_path: Path) -> None:
    from statusdash.agent.spool import Spool

    with Spool(tmp_path / "spool"):
        out = run(
            [
                *CLI,
                "--once",
                "--server",
                "http://127.0.0.1:9",
                "--api-key",
                "k",
                "--spool-dir",
                str(tmp_path / "spool"),
            ],
            tmp_path,
        )
    assert out.returncode == 1
    assert f"in use by another agent (pid {os.getpid()})" in out.stderr


def test_install_service_print_writes_nothing(tmp_path: Path) -> None:
    unit, env = tmp_path / "agent.service", tmp_path / "agent.env"
    out = run(
        [
            *SERVICE,
            "--print",
            "--user",
            "statusdash",
            "--unit-file",
            str(unit),
            "--env-file",
            str(env),
            "--server",
            "https://mon.example:5000",
            "--host-id",
            "web-1",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "Restart=always" in out.stdout and f"EnvironmentFile={env}" in out.stdout
    assert "User=statusdash" in out.stdout and "agent run" in out.stdout
    assert "STATUSDASH_SERVER=https://mon.example:5000" in out.stdout
    assert "systemctl enable --now agent" in out.stdout
    assert not unit.exists() and not env.exists()


def test_install_service_writes_unit_and_private_env_file_once(tmp_path: Path) -> None:
    unit, env = tmp_path / "etc" / "statusdash-agent.service", tmp_path / "etc" / "agent.env"
    args = [*SERVICE, "--unit-file", str(unit), "--env-file", str(env), "--interval", "15"]
    out = run(args, tmp_path)
    assert out.returncode == 0, out.stderr
    text = unit.read_text()
    assert "Restart=always" in text and "WantedBy=multi-user.target" in text
    assert "DynamicUser=yes" in text  # unprivileged by default
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert exec_line.endswith("agent run")
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert "STATUSDASH_AGENT_INTERVAL=15" in env.read_text() and "#API_KEY=" in env.read_text()
    env.write_text("API_KEY=secret\n")
    again = run(args, tmp_path)
    assert again.returncode == 0 and "kept the existing" in again.stdout
    assert env.read_text() == "API_KEY=secret\n"  # never overwritten


def test_install_service_without_permission_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = run([*SERVICE, "--unit-file", str(blocker / "x.service")], tmp_path)
    assert out.returncode == 1 and "cannot write" in out.stderr and "Traceback" not in out.stderr


def test_services_file_checks_land_in_the_dry_run_report(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(
        "services:\n"
        f"  - {{name: closed, tcp: '127.0.0.1:{free_port()}', timeout: 1s}}\n"
        "  - {name: absent, process: no-such-daemon-xyz}\n"
    )
    out = run([*CLI, "--once", "--dry-run"], tmp_path, STATUSDASH_AGENT_SERVICES=str(path))
    assert out.returncode == 0, out.stderr
    report = wire.decode_report(out.stdout, now=datetime.now(UTC), max_age=None)
    assert [(s.name, s.kind, s.status.value) for s in report.services] == [
        ("closed", "tcp", "unhealthy"),
        ("absent", "process", "unhealthy"),
    ]


def test_a_bad_services_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text("services:\n  - {name: web, http: 'ftp://x'}\n")
    for services in (path, tmp_path / "missing.yaml"):
        out = run([*CLI, "--once", "--dry-run", "--services", str(services)], tmp_path)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and str(services) in out.stderr
    assert "services[0].http" in run([*CLI, "--dry-run", "--services", str(path)], tmp_path).stderr


def test_the_default_services_file_is_used_only_if_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statusdash.agent.checks.config import parse_services
    from statusdash.cli import agent

    default = tmp_path / "services.yaml"
    monkeypatch.setattr(agent, "DEFAULT_SERVICES", default)
    assert agent._services(None) == (None, None)
    default.write_text("interval: 5s\nservices:\n  - {name: web, tcp: '127.0.0.1:80'}\n")
    checks, name = agent._services(None)
    assert name == str(default) and checks is not None
    assert parse_services(checks).interval == 5 and parse_services(checks).services[0].name == "web"
    default.write_text("services: []\n")  # nothing to check: no checks at all
    assert agent._services(None) == (None, None)


def test_the_daemon_with_services_loads_neither_pydantic_nor_yaml(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(f"services:\n  - {{name: db, tcp: '127.0.0.1:{free_port()}'}}\n")
    server = f"http://127.0.0.1:{free_port()}"  # nobody there: the agent spools
    agent = AgentProc(
        tmp_path,
        *("--server", server, "--api-key", "k", "--host-id", "web-1", "--interval", "0.2"),
        *("--spool-dir", str(tmp_path / "spool"), "--services", str(path)),
    )
    try:
        wait_for(lambda: len(spooled(tmp_path / "spool")) >= 1, what="a spooled report")
        maps = Path(f"/proc/{agent.proc.pid}/maps").read_text()
        cmdline = Path(f"/proc/{agent.proc.pid}/cmdline").read_bytes()
        assert b"statusdash.agent\0" in cmdline  # the exec'd daemon, not the CLI
        assert "pydantic_core" not in maps and "_yaml" not in maps
        assert agent.stop() == 0
    finally:
        agent.kill()
    assert "1 service check(s) from" in agent.log
