"""The scripting CLI against a real server: --json parsed back, clear failures and exit codes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.schema import HostDetail, HostSummary
from tests.conftest import (
    ADMIN_PASSWORD,
    Live,
    RunningServer,
    free_port,
    make_report,
    make_settings,
)

runner = CliRunner()


@pytest.fixture
def env(live_server: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("STATUSDASH_TOKEN", raising=False)
    monkeypatch.delenv("STATUS_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("STATUSDASH_SERVER", live_server.url)
    agent = live_server.agent("web-1")
    agent.post("/api/metrics/report", json=make_report("web-1", cpu=97.0))
    live_server.agent("db-1").post("/api/metrics/report", json=make_report("db-1"))
    return {"STATUSDASH_SERVER": live_server.url}


def test_login_stores_a_private_token_then_hosts_ls_json(
    env: dict[str, str], tmp_path: Path
) -> None:
    r = runner.invoke(app, ["login", "--password-stdin"], input=ADMIN_PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    token_file = tmp_path / "config" / "statusdash" / "token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    r = runner.invoke(app, ["hosts", "ls", "--json"])
    assert r.exit_code == 0, r.output
    hosts = [HostSummary.model_validate(h) for h in json.loads(r.stdout)]
    assert [h.host for h in hosts] == ["db-1", "web-1"]
    assert hosts[1].cpu_percent == 97.0


def test_hosts_ls_table_and_show(env: dict[str, str], live_server: Live) -> None:
    os.environ["STATUSDASH_TOKEN"] = live_server.token()
    r = runner.invoke(app, ["hosts", "ls"])
    assert r.exit_code == 0, r.output
    assert "web-1" in r.stdout and "97% !" in r.stdout
    r = runner.invoke(app, ["hosts", "show", "web-1", "--json"])
    assert r.exit_code == 0
    detail = HostDetail.model_validate(json.loads(r.stdout))
    assert detail.report.host == "web-1"
    r = runner.invoke(app, ["hosts", "show", "nope"])
    assert r.exit_code == 1
    assert "no host named 'nope'" in r.stderr


def test_wrong_password_fails_cleanly(env: dict[str, str]) -> None:
    r = runner.invoke(app, ["login", "--password-stdin"], input="wrong\n")
    assert r.exit_code == 1
    assert "wrong password" in r.stderr and "username" not in r.stderr  # none was asked for


def test_missing_token_says_how_to_log_in(env: dict[str, str]) -> None:
    r = runner.invoke(app, ["hosts", "ls"])
    assert r.exit_code == 1
    assert "statusdash login" in r.stderr


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statusdash.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_unreachable_server_is_exit_1_without_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "STATUSDASH_SERVER": f"http://127.0.0.1:{free_port()}",
        "STATUSDASH_TOKEN": "x",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    r = _cli("hosts", "ls", "--json", env=env, cwd=tmp_path)
    assert r.returncode == 1
    assert "cannot reach the server" in r.stderr
    assert "Traceback" not in r.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    r = _cli("hosts", "ls", "--bogus", env=dict(os.environ), cwd=tmp_path)
    assert r.returncode == 2


def test_server_run_without_secrets_names_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATUS")}
    r = _cli("server", "run", "--insecure-http", "--data-dir", str(tmp_path), env=env, cwd=tmp_path)
    assert r.returncode == 1
    assert "STATUS_ADMIN_PASSWORD" in r.stderr and "make setup" in r.stderr
    assert "Traceback" not in r.stderr


def test_hosts_ls_flags_what_the_server_judges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's thresholds (cpu 99, memory 30), not the CLI's own defaults (90, 85)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    settings = make_settings(tmp_path / "data", cpu_threshold=99, memory_threshold=30)
    server = RunningServer(settings).start()
    try:
        live = Live(server)
        live.agent("web-1").post("/api/metrics/report", json=make_report("web-1", cpu=97, mem=40))
        env = {"STATUSDASH_SERVER": live.url, "STATUSDASH_TOKEN": live.token()}
        r = runner.invoke(app, ["hosts", "ls"], env=env)
        assert r.exit_code == 0, r.output
        assert "97% " in r.stdout and "97% !" not in r.stdout and "40% !" in r.stdout
        assert "1 host" in r.stdout
        r = runner.invoke(app, ["hosts", "show", "web-1"], env=env)
        assert "cpu 97%  mem 40% !" in r.stdout
    finally:
        server.stop()
