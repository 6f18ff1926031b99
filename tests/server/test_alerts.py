"""Alert rules on sequences, the rules file, the lifecycle over a real server, and the CLI.

The ``alerting`` fixture defined here (used by the other alerting tests too) starts a real
uvicorn server whose app has ``install_alerting`` applied with a controllable clock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from statusdash import durations
from statusdash.schema import AlertState
from statusdash.server.alerts.engine import Change, Engine, Transition
from statusdash.server.alerts.rules import (
    RulesError,
    RuleSet,
    RuleSpec,
    default_rules,
    load_rules,
)
from statusdash.server.app import create_app
from statusdash.server.context import context_of
from statusdash.server.alerting import install_alerting
from statusdash.server.notify import parse_targets
from tests.conftest import Live, RunningServer, free_port, make_report, make_settings

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


# --- the shared live fixture ----------------------------------------------------------------------


class FakeClock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class AlertingServer(RunningServer):
    """A RunningServer whose app gets ``install_alerting`` with a test config."""

    def __init__(self, settings: Any, make_config: Callable[[], dict[str, Any]]) -> None:
        super().__init__(settings)
        self.make_config = make_config

    def prepare(self, app: Any) -> None:
        install_alerting(app, **self.make_config())


@dataclass
class Harness:
    live: Live
    clock: FakeClock
    rules: Path
    webhooks: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def server(self) -> AlertingServer:
        server = self.live.server
        assert isinstance(server, AlertingServer)
        return server

    def config(self) -> dict[str, Any]:
        """The changes to the settings' alerting config: fake clock, short intervals."""
        base: dict[str, Any] = {
            "rules_file": self.rules if self.rules.exists() else None,
            "webhooks": parse_targets(self.webhooks),
            "check_interval_s": 0.05,
            "webhook_attempts": 4,
            "webhook_backoff_s": 0.05,
            "webhook_timeout_s": 2.0,
            "clock": self.clock,
        }
        base.update(self.overrides)
        return base

    def restart(self) -> None:
        self.server.stop()
        self.server.start()


def wait_for(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


FAST_RULES = """
[rules.cpu]
threshold = 90
clear = 80
for = 0
[rules.memory]
for = 0
[rules.disk]
for = 0
"""


@pytest.fixture
def alerting(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Start a server with alerting; ``alerting(rules=..., webhooks=[...], **config)``."""
    started: list[Harness] = []

    def start(
        rules: str | None = FAST_RULES, webhooks: list[str] | None = None, **over: Any
    ) -> Harness:
        path = tmp_path / "rules.toml"
        if rules is not None:
            path.write_text(rules)
        h = Harness(Live(RunningServer(make_settings(tmp_path / "data"))), FakeClock(), path)
        h.webhooks, h.overrides = webhooks or [], over
        h.live.server = AlertingServer(h.live.settings, h.config).start()
        started.append(h)
        return h

    yield start
    for h in started:
        h.server.stop()


# --- the engine on sequences ----------------------------------------------------------------------


def _rules(threshold: float = 90, clear: float = 85, for_s: float = 30) -> RuleSet:
    base = default_rules()
    base["cpu"] = RuleSpec(True, threshold, clear, for_s, "warning")
    return RuleSet(base)


def _run(engine: Engine, values: Sequence[float], step_s: float = 10) -> list[Transition]:
    out = []
    for i, v in enumerate(values):
        t = engine.observe("cpu", "web-1", "", v, T0 + timedelta(seconds=i * step_s))
        if t is not None:
            out.append(t)
    return out


def test_flapping_at_the_threshold_raises_one_alert() -> None:
    values = [91, 89, 91, 88, 92, 86, 91, 89, 90, 87, 91, 88]
    ts = _run(Engine(_rules()), values)
    assert [t.change for t in ts] == [Change.pending, Change.fired]
    assert ts[1].snapshot.fired_at == T0 + timedelta(seconds=30)
    assert ts[1].alert.state == AlertState.firing


def test_pending_duration_is_respected() -> None:
    engine = Engine(_rules(for_s=30))
    ts = _run(engine, [95, 95, 95, 60])  # 0 s, 10 s, 20 s: never 30 s long
    assert [t.change for t in ts] == [Change.pending, Change.cancelled]
    assert not engine.open
    ts = _run(Engine(_rules(for_s=30)), [95, 95, 95, 95])
    assert [t.change for t in ts] == [Change.pending, Change.fired]


def test_clear_threshold_is_respected() -> None:
    engine = Engine(_rules(for_s=0))
    ts = _run(engine, [95, 89, 86, 85.5, 84.9])
    assert [t.change for t in ts] == [Change.fired, Change.resolved]
    resolved = ts[1].snapshot
    assert resolved.value == 84.9 and resolved.resolved_at == T0 + timedelta(seconds=40)
    # A second episode is a second alert.
    ts = _run(engine, [91])
    assert [t.change for t in ts] == [Change.fired]
    assert ts[0].alert is not resolved


def test_messages_name_host_and_subject() -> None:
    engine = Engine(_rules(for_s=0))
    t = engine.observe("disk", "db-1", "/var/lib/pg", 97.0, T0)
    assert t is not None and "db-1" in t.alert.message and "/var/lib/pg" in t.alert.message
    t = engine.observe("service", "db-1", "postgres", 1.0, T0, "connection refused")
    assert t is not None and t.change == Change.fired
    assert t.alert.message == "db-1: service postgres unhealthy: connection refused"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=60))
def test_any_sequence_keeps_the_lifecycle(values: list[float]) -> None:
    threshold, clear, for_s = 90.0, 85.0, 20.0
    engine = Engine(_rules(threshold, clear, for_s))
    state = "none"
    for i, v in enumerate(values):
        now = T0 + timedelta(seconds=i * 10)
        t = engine.observe("cpu", "h", "", v, now)
        assert len(engine.open) <= 1
        if t is None:
            continue
        if t.change == Change.pending:
            assert state == "none" and v >= threshold
            state = "pending"
        elif t.change == Change.fired:
            assert state in ("none", "pending") and v >= clear
            assert (now - t.alert.started_at).total_seconds() >= for_s
            state = "firing"
        elif t.change == Change.resolved:
            assert state == "firing" and v < clear
            state = "none"
        else:
            assert state == "pending" and v < clear
            state = "none"


# --- the rules file -------------------------------------------------------------------------------


def test_rules_file_overrides_per_host_and_mount(tmp_path: Path) -> None:
    toml = tmp_path / "rules.toml"
    toml.write_text(
        """
[rules.disk]
threshold = 85
for = "2m"
[[overrides]]
host = "db-*"
rule = "disk"
mount = "/var/lib/*"
threshold = 95
clear = 92
[[overrides]]
host = "build-1"
rule = "cpu"
enabled = false
"""
    )
    rules = load_rules(toml, default_rules(90, 85, 90))
    assert rules.spec("disk", "web-1", "/") == RuleSpec(True, 85, 80, 120, "warning")
    assert rules.spec("disk", "db-1", "/var/lib/pg").threshold == 95
    assert rules.spec("disk", "db-1", "/var/lib/pg").clear == 92
    assert rules.spec("disk", "db-1", "/").threshold == 85
    assert not rules.spec("cpu", "build-1").enabled
    assert rules.spec("cpu", "build-2").enabled
    yml = tmp_path / "rules.yaml"
    yml.write_text(
        "rules:\n  memory:\n    threshold: 70\noverrides:\n  - {rule: cpu, threshold: 50}\n"
    )
    rules = load_rules(yml, default_rules())
    assert rules.spec("memory", "x").threshold == 70 and rules.spec("memory", "x").clear == 65
    assert rules.spec("cpu", "any").threshold == 50


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[rules.cpu]\nthreshold = 'high'\n", "rules.cpu.threshold"),
        ("[rules.cpu]\nthreshold = 80\nclear = 90\n", "clear (90) is above threshold (80)"),
        ("[rules.gpu]\nthreshold = 80\n", "rules.gpu"),
        ("[rules.cpu\n", "not valid TOML"),
        ("[[overrides]]\nrule = 'disk'\nfor = 'soon'\n", "overrides[0].for"),
    ],
)
def test_a_bad_rules_file_says_where(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RulesError) as err:
        load_rules(path, default_rules())
    assert str(path) in str(err.value) and needle in str(err.value)


def test_durations() -> None:
    assert durations.parse("90s") == 90 and durations.parse("2h") == 7200
    assert durations.parse(5) == 5 and durations.parse("1.5m") == 90
    with pytest.raises(ValueError, match="not a duration"):
        durations.parse("soon")


# --- the lifecycle over a real server -------------------------------------------------------------


def _alerts(live: Live, state: str = "active") -> list[dict[str, Any]]:
    with live.reader() as r:
        resp = r.get("/api/alerts", params={"state": state})
        assert resp.status_code == 200, resp.text
        body: list[dict[str, Any]] = resp.json()
        return body


def test_lifecycle_over_reports(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    agent = h.live.agent("web-1")
    for cpu in (95, 97, 85, 93):  # one alert however often it is seen above clear
        assert (
            agent.post("/api/metrics/report", json=make_report("web-1", cpu=cpu)).status_code == 200
        )
    firing = wait_for(lambda: _alerts(h.live), what="cpu alert")
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
    wait_for(lambda: not _alerts(h.live), what="resolution")
    done = _alerts(h.live, "resolved")
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
    [a] = wait_for(lambda: _alerts(h.live), what="disk alert")
    assert (a["rule"], a["subject"]) == ("disk", "/data") and "/data" in a["message"]
    h.restart()
    assert [b["id"] for b in _alerts(h.live)] == [a["id"]]
    again = make_report("db-1")
    again["disks"] = report["disks"]
    h.live.agent("db-1").post("/api/metrics/report", json=again)  # still full: same alert
    time.sleep(0.2)
    assert [b["id"] for b in _alerts(h.live, "all")] == [a["id"]]
    h.live.agent("db-1").post("/api/metrics/report", json=make_report("db-1"))  # /data is gone
    wait_for(lambda: not _alerts(h.live), what="alert of a vanished mount resolved")


def test_store_prunes_old_history(tmp_path: Path) -> None:
    from statusdash.server.alerts.engine import Alert
    from statusdash.server.alerts.store import AlertStore, alert_row

    store = AlertStore(tmp_path / "x.db")
    store.open()
    old = Alert("cpu", "h", "", AlertState.resolved, "warning", "m", T0)
    old.resolved_at = T0
    new = Alert("cpu", "h", "", AlertState.firing, "warning", "m", T0)
    ids = [store.save(None, alert_row(a)) for a in (old, new)]
    store.record_failure(T0, "json+http://x", "json", "firing", ids[0], 3, "HTTP 500")
    store.prune(T0 + timedelta(days=1))
    assert store.get(ids[0]) is None and store.get(ids[1]) is not None
    assert store.failures(10) == []
    store.close()


def test_offline_detection_on_a_controllable_clock(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    agent = h.live.agent("web-2")
    agent.post("/api/metrics/report", json=make_report("web-2", interval_s=10))
    time.sleep(0.2)
    assert _alerts(h.live) == []  # a few ticks, no time passing: still online
    h.clock.advance(45)  # 4.5 intervals: stale but not offline
    time.sleep(0.2)
    assert _alerts(h.live) == []
    h.clock.advance(20)
    [a] = wait_for(lambda: _alerts(h.live), what="offline alert")
    assert (a["rule"], a["host"], a["severity"]) == ("offline", "web-2", "critical")
    assert a["message"].startswith("web-2: offline, no report for 1 min")
    agent.post("/api/metrics/report", json=make_report("web-2", interval_s=10))
    wait_for(lambda: not _alerts(h.live), what="back online")
    assert _alerts(h.live, "resolved")[0]["rule"] == "offline"


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
        url = h.live.url + path.replace("{alert_id}", "1")
        if kind == "websocket":
            assert httpx.get(url, headers=upgrade).status_code == 401, path
            continue
        answered = [httpx.request(m, url) for m in ("GET", "POST")]
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

        assert wait_for(cpu_rule, 15, "server")["rules"]["cpu"]["threshold"] == 70
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


def cli_env(h: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for CliRunner against ``h``: no stray .env, a token, the server URL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return {"STATUSDASH_SERVER": h.live.url, "STATUSDASH_TOKEN": h.live.token()}


def test_alerts_cli(
    alerting: Callable[..., Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statusdash.cli.alerts import app

    h = alerting()
    h.live.agent("web-3").post("/api/metrics/report", json=make_report("web-3", mem=99))
    [a] = wait_for(lambda: _alerts(h.live), what="memory alert")
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
