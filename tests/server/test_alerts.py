"""Alerts over a real server: the lifecycle, restarts, offline detection, the routes' guard,
rules reloads (the endpoint and SIGHUP), and the ``statusdash alerts`` CLI.

The ``alerting`` fixture (tests/server/conftest.py) starts the server; tests/server/harness.py
holds what it is made of.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash.server.alerting import install_alerting
from statusdash.server.app import create_app
from statusdash.server.context import context_of
from tests.conftest import Live, RunningServer, free_port, make_report, make_settings
from tests.server.harness import Harness, cli_env, fetch_alerts, wait_for

# --- the lifecycle over a real server -------------------------------------------------------------


def test_lifecycle_over_reports(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    agent = h.live.agent("web-1")
    for cpu in (95, 97, 85, 93):  # one alert however often it is seen above clear
        assert (
            agent.post("/api/metrics/report", json=make_report("web-1", cpu=cpu)).status_code == 200
        )
    firing = wait_for(lambda: fetch_alerts(h.live), what="cpu alert")
    assert len(firing) == 1
    a = firing[0]
    assert (a["rule"], a["host"], a["state"], a["threshold"]) == ("cpu", "web-1", "firing", 90)
    assert "web-1" in a["message"] and "CPU" in a["message"]
    with h.live.reader() as r:
        acked = r.post(f"/api/alerts/{a['id']}/ack").json()
        assert acked["acked_by"] == "admin" and acked["acked_at"]
        assert r.post("/api/alerts/9999/ack").status_code == 404
        sentiment = r.get("/api/hosts/sentiment/overall").json()
        assert sentiment["alerts_active"] == 1 and sentiment["status"] == "degraded"
    agent.post("/api/metrics/report", json=make_report("web-1", cpu=10))
    wait_for(lambda: not fetch_alerts(h.live), what="resolution")
    done = fetch_alerts(h.live, "resolved")
    assert [d["id"] for d in done] == [a["id"]] and done[0]["resolved_at"]
    with h.live.reader() as r:
        assert r.post(f"/api/alerts/{a['id']}/ack").status_code == 409


def test_disk_alerts_per_mount_and_restart_keeps_them(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    report = make_report("db-1")
    report["disks"] = [
        {"mount": "/", "total": 100, "used": 50, "percent": 50.0},
        {"mount": "/data", "total": 100, "used": 97, "percent": 97.0},
    ]
    h.live.agent("db-1").post("/api/metrics/report", json=report)
    [a] = wait_for(lambda: fetch_alerts(h.live), what="disk alert")
    assert (a["rule"], a["subject"]) == ("disk", "/data") and "/data" in a["message"]
    h.restart()
    assert [b["id"] for b in fetch_alerts(h.live)] == [a["id"]]
    again = make_report("db-1")
    again["disks"] = report["disks"]
    h.live.agent("db-1").post("/api/metrics/report", json=again)  # still full: same alert
    time.sleep(0.2)
    assert [b["id"] for b in fetch_alerts(h.live, "all")] == [a["id"]]
    h.live.agent("db-1").post("/api/metrics/report", json=make_report("db-1"))  # /data is gone
    wait_for(lambda: not fetch_alerts(h.live), what="alert of a vanished mount resolved")


def test_offline_detection_on_a_controllable_clock(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    agent = h.live.agent("web-2")
    agent.post("/api/metrics/report", json=make_report("web-2", interval_s=10))
    time.sleep(0.2)
    assert fetch_alerts(h.live) == []  # a few ticks, no time passing: still online
    h.clock.advance(45)  # 4.5 intervals: stale but not offline
    time.sleep(0.2)
    assert fetch_alerts(h.live) == []
    h.clock.advance(20)
    [a] = wait_for(lambda: fetch_alerts(h.live), what="offline alert")
    assert (a["rule"], a["host"], a["severity"]) == ("offline", "web-2", "critical")
    assert a["message"].startswith("web-2: offline, no report for 1 min")
    agent.post("/api/metrics/report", json=make_report("web-2", interval_s=10))
    wait_for(lambda: not fetch_alerts(h.live), what="back online")
    assert fetch_alerts(h.live, "resolved")[0]["rule"] == "offline"


def test_every_alerting_route_refuses_an_anonymous_caller(
    alerting: Callable[..., Harness],
) -> None:
    import httpx

    from statusdash.server.auth import api_routes, unguarded_routes

    h = alerting()
    app = h.server.app
    assert unguarded_routes(app) == []
    mine = [r for r in api_routes(app) if "alert" in r[1] or r[1] in OURS]
    assert {path for _, path, _ in mine} >= OURS
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    for kind, path, _ in mine:
        url = h.live.url + path.replace("{alert_id}", "1").replace("{silence_id}", "1")
        if kind == "websocket":
            assert httpx.get(url, headers=upgrade).status_code == 401, path
            continue
        answered = [httpx.request(m, url) for m in ("GET", "POST", "DELETE")]
        answered = [r for r in answered if r.status_code != 405]
        assert answered, path
        for r in answered:
            assert r.status_code == 401 and r.json()["error"] == "unauthorized", path


def test_installing_twice_replaces_the_services_not_the_routes(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    before = context_of(app)
    first = before.alerting.service
    routes = len(app.router.routes)
    installed = install_alerting(app, check_interval_s=0.1)  # what the tests do
    ctx = context_of(app)
    assert len(app.router.routes) == routes and ctx.alerting is installed
    assert ctx.alerting.service is not first and ctx.alerting.service.config.check_interval_s == 0.1
    assert (ctx.storage, ctx.jobs, ctx.auth) == (before.storage, before.jobs, before.auth)
    listeners = ctx.storage.listeners
    assert listeners.count(ctx.alerting.service.on_commit) == 1 and first.on_commit not in listeners
    assert ctx.alerting.health.alerts is ctx.alerting.service


OURS = {
    "/api/alerts",
    "/api/alerts/{alert_id}/ack",
    "/api/alerts/silences",
    "/api/alerts/rules",
    "/api/alerts/test-notify",
    "/api/notifications/failures",
    "/api/events",
    "/api/services",
    "/api/stream",
}


def test_rules_endpoint_and_reload_keep_old_rules(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    with h.live.reader() as r:
        body = r.get("/api/alerts/rules").json()
    assert body["rules"]["cpu"]["threshold"] == 90 and body["reload_error"] is None
    service = context_of(h.server.app).alerting.service
    h.rules.write_text("[rules.cpu]\nthreshold = 50\nclear = 70\n")
    assert "clear (70) is above threshold (50)" in (service.reload_rules() or "")
    assert service.engine.rules.spec("cpu", "x").threshold == 90


@pytest.mark.slow
def test_sighup_rereads_the_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  cpu: {threshold: 70}\n")
    port = free_port()
    script = (
        "import sys, uvicorn\n"
        "from pathlib import Path\n"
        "from tests.conftest import make_settings\n"
        "from statusdash.server.app import create_app\n"
        "from statusdash.server.alerting import install_alerting\n"
        "s = make_settings(Path(sys.argv[1]), status_port=int(sys.argv[2]))\n"
        "app = create_app(s)\n"
        "install_alerting(app, rules_file=Path(sys.argv[3]))\n"
        "uvicorn.run(app, host='127.0.0.1', port=s.status_port, log_level='warning')\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "data"), str(port), str(rules)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "src")])},
    )
    try:
        live = Live(RunningServer(make_settings(tmp_path / "data", status_port=port)))

        def cpu_rule() -> dict[str, Any] | None:
            try:
                with live.reader() as r:
                    body: dict[str, Any] = r.get("/api/alerts/rules").json()
                    return body
            except Exception:
                return None

        assert wait_for(cpu_rule, 60, "server")["rules"]["cpu"]["threshold"] == 70
        rules.write_text("rules:\n  cpu: {threshold: 75, clear: 60}\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (cpu_rule() or {}).get("rules", {}).get("cpu", {}).get("threshold") == 75)
        rules.write_text("rules:\n  cpu: [oops\n")
        proc.send_signal(signal.SIGHUP)
        body = wait_for(lambda: (b := cpu_rule()) and b["reload_error"] and b, what="error")
        assert "not valid YAML" in body["reload_error"] and str(rules) in body["reload_error"]
        assert body["rules"]["cpu"]["threshold"] == 75 and proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


# --- the CLI --------------------------------------------------------------------------------------


def test_alerts_cli(
    alerting: Callable[..., Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statusdash.cli.alerts import app

    h = alerting()
    h.live.agent("web-3").post("/api/metrics/report", json=make_report("web-3", mem=99))
    [a] = wait_for(lambda: fetch_alerts(h.live), what="memory alert")
    env = cli_env(h, tmp_path, monkeypatch)
    runner = CliRunner()
    out = runner.invoke(app, ["ls"], env=env)
    assert out.exit_code == 0 and "web-3" in out.output and "memory" in out.output
    out = runner.invoke(app, ["ls", "--all", "--json"], env=env)
    assert out.exit_code == 0
    assert [x["id"] for x in json.loads(out.output)] == [a["id"]]
    out = runner.invoke(app, ["ack", str(a["id"])], env=env)
    assert out.exit_code == 0 and f"acknowledged alert {a['id']}" in out.output
    out = runner.invoke(app, ["silence", "web-3", "--for", "2h"], env=env)
    assert out.exit_code == 0 and "silenced host web-3" in out.output
    out = runner.invoke(app, ["silence", "disk", "--for", "30m", "--json"], env=env)
    assert out.exit_code == 0 and json.loads(out.output)["rule"] == "disk"
    out = runner.invoke(app, ["silences"], env=env)
    assert "host=web-3" in out.output and "rule=disk" in out.output
    out = runner.invoke(app, ["silence", "web-3", "--for", "soon"], env=env)
    assert out.exit_code == 2 and "not a duration" in out.stderr
    out = runner.invoke(app, ["ack", "4242"], env=env)
    assert out.exit_code == 1 and "no alert with id 4242" in out.stderr
    out = runner.invoke(app, ["test-notify"], env=env)
    assert out.exit_code == 1 and "WEBHOOK_URLS" in out.stderr
