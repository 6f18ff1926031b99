"""``hosts rm``, ``alerts resolve`` / ``unsilence`` / ``silence`` refusals and ``services ls``
through the real command against a real server: what they print, their JSON, their exit codes."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from statusdash.agent.checks.run import CheckResult
from statusdash.agent.monitor import to_event
from statusdash.cli.main import app
from tests.conftest import Live, make_report

runner = CliRunner()


@pytest.fixture
def env(live_server: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("STATUSDASH_SERVER", live_server.url)
    monkeypatch.setenv("STATUSDASH_TOKEN", live_server.token())
    for host in ("web-1", "db-1"):
        assert (
            live_server.agent(host).post("/api/metrics/report", json=make_report(host)).is_success
        )
    return live_server


def event_alert(live: Live, host: str = "web-1") -> int:
    """An alert raised by an event (fires at once); its id."""
    event = {"type": "SYSTEM_ALERT_TRIGGERED", "alertName": "backup", "message": "backup failed"}
    assert live.agent(host).post("/api/events", json=event).is_success
    r = runner.invoke(app, ["alerts", "ls", "--json"])
    [a] = json.loads(r.stdout)
    return int(a["id"])


def test_hosts_rm_then_ls_and_the_come_back(env: Live) -> None:
    alert_id = event_alert(env)
    r = runner.invoke(app, ["hosts", "rm", "web-1"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "removed web-1 from the fleet: 1 alert resolved, 0 services dropped, history kept until"
        " retention",
        "  its next report brings it back; `statusdash certs revoke web-1` keeps it out",
    ]
    r = runner.invoke(app, ["hosts", "ls", "--json"])
    assert [h["host"] for h in json.loads(r.stdout)] == ["db-1"]
    r = runner.invoke(app, ["alerts", "ls", "--all", "--json"])
    [a] = json.loads(r.stdout)
    assert (a["id"], a["state"], a["resolved_by"]) == (alert_id, "resolved", "admin")
    env.agent("web-1").post("/api/metrics/report", json=make_report("web-1"))
    r = runner.invoke(app, ["hosts", "ls", "--json"])
    assert [h["host"] for h in json.loads(r.stdout)] == ["db-1", "web-1"]


def test_hosts_rm_purge_json_deletes_the_rows(env: Live) -> None:
    r = runner.invoke(app, ["hosts", "rm", "db-1", "--purge", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {
        "host": "db-1",
        "purged": True,
        "alerts_resolved": 0,
        "services": [],
    }
    conn = sqlite3.connect(env.settings.db_path)
    try:
        names = [n for (n,) in conn.execute("SELECT name FROM hosts ORDER BY name")]
        samples = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    finally:
        conn.close()
    assert names == ["web-1"] and samples == 1


def test_hosts_rm_failures_exit_1_or_2_with_one_line(env: Live) -> None:
    r = runner.invoke(app, ["hosts", "rm", "nope"])
    assert r.exit_code == 1
    assert r.stderr.strip() == (
        "statusdash: no host named 'nope'; the hosts are: db-1, web-1 (HTTP 404, not_found)"
    )
    r = runner.invoke(app, ["hosts", "rm", "Bad Host"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_hosts_rm_help_says_the_certificate_stays_valid(env: Live) -> None:
    r = runner.invoke(app, ["hosts", "rm", "--help"], terminal_width=200)
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    assert "does NOT revoke its agent certificate" in text
    assert "statusdash certs revoke HOST" in text
    assert "--purge " in text and "--no-purge" not in text  # a flag, not a pair


def test_alerts_resolve_records_the_reason_and_refuses_twice(env: Live) -> None:
    alert_id = event_alert(env)
    r = runner.invoke(app, ["alerts", "resolve", str(alert_id), "--reason", "restored by hand"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"resolved alert {alert_id}: backup failed"
    r = runner.invoke(app, ["alerts", "ls", "--all", "--json"])
    [a] = json.loads(r.stdout)
    assert (a["resolved_by"], a["resolved_reason"]) == ("admin", "restored by hand")
    r = runner.invoke(app, ["alerts", "resolve", str(alert_id)])
    assert r.exit_code == 1 and f"alert {alert_id} is already resolved" in r.stderr
    r = runner.invoke(app, ["alerts", "resolve", "424242"])
    assert r.exit_code == 1 and "no alert with id 424242" in r.stderr


def test_alerts_silence_unknown_target_says_which_exist(env: Live) -> None:
    r = runner.invoke(app, ["alerts", "silence", "wbe-1", "--for", "1h"])
    assert r.exit_code == 1
    assert r.stderr.startswith("statusdash: no host matches 'wbe-1'; the hosts are: db-1, web-1")
    assert "a rule is one of: cpu, memory, disk, offline, service, event" in r.stderr
    r = runner.invoke(app, ["alerts", "silence", "rule=cpux", "--for", "1h"])
    assert r.exit_code == 1 and "must be one of cpu, memory" in r.stderr
    r = runner.invoke(app, ["alerts", "silences", "--json"])
    assert json.loads(r.stdout) == []


def test_alerts_unsilence(env: Live) -> None:
    r = runner.invoke(app, ["alerts", "silence", "web-1", "--for", "1h", "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    r = runner.invoke(app, ["alerts", "unsilence", str(made["id"])])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"ended silence {made['id']} (host=web-1)"
    r = runner.invoke(app, ["alerts", "silences"])
    assert r.stdout.strip() == "no silences in force"
    r = runner.invoke(app, ["alerts", "unsilence", str(made["id"])])
    assert r.exit_code == 1
    assert f"no silence {made['id']} is in force (in force: none)" in r.stderr


def test_services_ls_says_unknown_for_a_check_that_cannot_run(env: Live) -> None:
    now = datetime.now(UTC).isoformat()
    cannot = CheckResult(
        name="postgres",
        kind="systemd",
        status="unknown",
        checked_at=now,
        latency_ms=None,
        detail="systemctl not found",
    )
    assert env.agent("web-1").post("/api/events", json=[to_event(cannot, 60.0)]).is_success
    r = runner.invoke(app, ["services", "ls", "--json"])
    [svc] = json.loads(r.stdout)
    assert (svc["status"], svc["error"], svc["lastCheck"]) == (
        "unknown",
        "systemctl not found",
        now.replace("+00:00", "Z"),
    )
    r = runner.invoke(app, ["services", "ls"])
    [row] = [line for line in r.stdout.splitlines() if "postgres" in line]
    assert row.split()[:4] == ["?", "web-1", "postgres", "unknown"]
