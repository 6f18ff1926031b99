"""``GET /api/alerts/rules`` and ``statusdash alerts rules``: the rules the server judges with,
globally and per known host, mount and service, each saying where it came from."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import make_report
from tests.server.harness import Harness, cli_env, fetch_alerts, wait_for

RULES = """
[rules.cpu]
threshold = 95
clear = 85
for = "2m"

[[overrides]]
host = "db-*"
rule = "disk"
mount = "/var/lib/*"
threshold = 97
clear = 94
severity = "critical"

[[overrides]]
host = "build-1"
rule = "cpu"
enabled = false

[[overrides]]
host = "web-*"
rule = "memory"
threshold = 60
for = 0
"""


def _disks(*mounts: tuple[str, float]) -> list[dict[str, object]]:
    return [
        {"mount": m, "fstype": "ext4", "total": 100 << 30, "used": int(p) << 30, "percent": p}
        for m, p in mounts
    ]


def _seed(h: Harness) -> None:
    reports = {
        "db-1": make_report("db-1", disks=_disks(("/", 50.0), ("/var/lib/pg", 96.0))),
        "build-1": make_report("build-1", cpu=99.0),
        "web-1": make_report("web-1", mem=70.0),
    }
    for host, report in reports.items():
        with h.live.agent(host) as agent:
            assert agent.post("/api/metrics/report", json=report).status_code == 200

    def hosts() -> int:
        with h.live.reader() as r:
            return len(r.get("/api/hosts").json())

    wait_for(lambda: hosts() == 3, what="3 hosts")


def test_rules_in_force_per_host_and_mount(alerting: Callable[..., Harness]) -> None:
    h = alerting(rules=RULES)
    _seed(h)
    with h.live.reader() as r:
        resp = r.get("/api/alerts/rules")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["file"] == str(h.rules) and body["reload_error"] is None
    cpu = body["rules"]["cpu"]
    assert (cpu["threshold"], cpu["clear"], cpu["for_s"], cpu["source"]) == (95, 85, 120, "file")
    assert body["rules"]["memory"]["source"] == "default"
    assert body["rules"]["memory"]["threshold"] == 85  # the env default of the test settings
    assert set(body["hosts"]) == {"db-1", "build-1", "web-1"}
    db = body["hosts"]["db-1"]
    assert set(db["disks"]) == {"/", "/var/lib/pg"}
    pg, root = db["disks"]["/var/lib/pg"], db["disks"]["/"]
    assert (pg["threshold"], pg["clear"], pg["severity"]) == (97, 94, "critical")
    assert pg["source"] == "override" and pg["overrides"] == [0]
    assert root["threshold"] == 90 and root["source"] == "default" and root["overrides"] == []
    assert db["rules"]["cpu"]["threshold"] == 95 and db["rules"]["cpu"]["source"] == "file"
    build = body["hosts"]["build-1"]["rules"]["cpu"]
    assert build["enabled"] is False and build["source"] == "override" and build["overrides"] == [1]
    web = body["hosts"]["web-1"]["rules"]["memory"]
    assert (web["threshold"], web["for_s"], web["overrides"]) == (60, 0, [2])
    assert body["hosts"]["web-1"]["rules"]["offline"]["severity"] == "critical"
    # What the route says is what the engine judges: web-1 at 70% memory alerts (60 there),
    # build-1 at 99% CPU does not (disabled), and db-1's /var/lib/pg at 96% does not (97 there).
    firing = wait_for(lambda: fetch_alerts(h.live), what="memory alert on web-1")
    assert [(a["host"], a["rule"], a["threshold"]) for a in firing] == [("web-1", "memory", 60)]


def test_rules_route_is_guarded(alerting: Callable[..., Harness]) -> None:
    h = alerting(rules=RULES)
    with httpx.Client(base_url=h.live.url) as anon:
        resp = anon.get("/api/alerts/rules")
    assert resp.status_code == 401 and set(resp.json()) == {"error", "detail"}


def test_alerts_rules_cli(
    alerting: Callable[..., Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statusdash.cli.alerts import app

    h = alerting(rules=RULES)
    _seed(h)
    env = cli_env(h, tmp_path, monkeypatch)
    runner = CliRunner()
    out = runner.invoke(app, ["rules", "--json"], env=env)
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    with h.live.reader() as r:
        assert body == r.get("/api/alerts/rules").json()  # the same as the API, nothing made up
    assert body["hosts"]["db-1"]["disks"]["/var/lib/pg"]["threshold"] == 97
    out = runner.invoke(app, ["rules", "--host", "db-1"], env=env)
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if "/var/lib/pg" in x)
    assert line.split()[:9] == [
        "db-1", "disk", "/var/lib/pg", "on", "97%", "94%", "1m", "critical", "override",
    ]  # fmt: skip
    assert "build-1" not in out.output and "rules file: " + str(h.rules) in out.output
    out = runner.invoke(app, ["rules"], env=env)
    assert out.exit_code == 0
    star = next(x for x in out.output.splitlines() if x.split()[:2] == ["*", "cpu"])
    assert star.split()[3:9] == ["on", "95%", "85%", "2m", "warning", "file"]
    out = runner.invoke(app, ["rules", "--host", "nope"], env=env)
    assert out.exit_code == 1 and "no host named 'nope'" in out.stderr
    assert "db-1" in out.stderr and "Traceback" not in out.stderr
