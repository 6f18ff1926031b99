"""``POST /api/events`` end to end: the health map, staleness, alerts, sentiment, restart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash.schema import ServiceHealth
from tests.server.harness import Harness, cli_env, fetch_alerts, wait_for


def healthy(name: str, **extra: Any) -> dict[str, Any]:
    payload = {"serviceName": name, "checkedAt": "2026-11-27T10:00:00Z", "metrics": {"ms": 12}}
    return {"type": "SYSTEM_SERVICE_HEALTHY", "payload": {**payload, **extra}}


def unhealthy(name: str, error: str = "connection refused", **extra: Any) -> dict[str, Any]:
    payload = {"serviceName": name, "checkedAt": "2026-11-27T10:00:05Z", "errorMessage": error}
    return {"type": "SYSTEM_SERVICE_UNHEALTHY", "payload": {**payload, **extra}}


def services(h: Harness) -> list[dict[str, Any]]:
    with h.live.reader() as r:
        body: list[dict[str, Any]] = r.get("/api/services").json()
        return body


def sentiment(h: Harness) -> str:
    with h.live.reader() as r:
        return str(r.get("/api/hosts/sentiment/overall").json()["status"])


def test_service_health_end_to_end(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    agent = h.live.agent("web-1")
    r = agent.post("/api/events", json=healthy("nginx"))
    assert r.status_code == 200 and r.json() == {"accepted": 1, "changed": 1}
    [svc] = services(h)
    assert svc == {
        "name": "nginx",
        "status": "healthy",
        "lastCheck": "2026-11-27T10:00:00Z",
        "metrics": {"ms": 12},
        "error": None,
        "host": "web-1",
    }
    assert sentiment(h) == "healthy"
    # A heartbeat with the same status changes nothing readers see.
    assert agent.post("/api/events", json=healthy("nginx")).json()["changed"] == 0

    r = agent.post("/api/events", json=unhealthy("nginx"))
    assert r.json()["changed"] == 1
    assert services(h)[0]["status"] == "unhealthy"
    assert services(h)[0]["error"] == "connection refused"
    [a] = wait_for(lambda: fetch_alerts(h.live), what="service alert")
    assert (a["rule"], a["host"], a["subject"], a["state"]) == (
        "service",
        "web-1",
        "nginx",
        "firing",
    )
    assert a["message"] == "web-1: service nginx unhealthy: connection refused"
    assert sentiment(h) == "unhealthy"
    agent.post("/api/events", json=unhealthy("nginx", "still down"))  # no second alert
    agent.post("/api/events", json=healthy("nginx"))
    wait_for(lambda: not fetch_alerts(h.live), what="resolution")
    assert [x["id"] for x in fetch_alerts(h.live, "all")] == [a["id"]]
    assert sentiment(h) == "healthy"


def test_a_quiet_service_becomes_unknown_and_the_map_survives_restart(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    agent = h.live.agent("db-1")
    agent.post("/api/events", json=healthy("postgres", expectedWithinS=30))
    agent.post("/api/events", json=healthy("redis"))  # the server's default period (180 s)
    h.clock.advance(40)
    wait_for(lambda: services(h)[0]["status"] == "unknown", what="unknown")
    assert [s["status"] for s in services(h)] == ["unknown", "healthy"]
    assert sentiment(h) == "degraded"
    h.restart()
    rebuilt = [ServiceHealth.model_validate(s) for s in services(h)]
    assert [(s.host, s.name, s.status.value) for s in rebuilt] == [
        ("db-1", "postgres", "unknown"),
        ("db-1", "redis", "healthy"),
    ]
    assert rebuilt[0].metrics == {"ms": 12}
    agent.post("/api/events", json=healthy("postgres", expectedWithinS=30))
    assert services(h)[0]["status"] == "healthy"


def test_event_shapes_and_alert_events(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    agent = h.live.agent("app-1")
    flat = {"type": "SYSTEM_SERVICE_UNHEALTHY", "serviceName": "queue", "errorMessage": "lag"}
    batch = {"events": [flat, healthy("api")]}
    assert agent.post("/api/events", json=batch).json() == {"accepted": 2, "changed": 2}
    assert agent.post("/api/events", json=[healthy("api")]).json()["accepted"] == 1
    trig = {
        "type": "SYSTEM_ALERT_TRIGGERED",
        "payload": {
            "alertName": "backlog",
            "message": "app-1: backlog over 10k",
            "severity": "critical",
        },
    }
    agent.post("/api/events", json=trig)
    alerts = wait_for(
        lambda: len(fetch_alerts(h.live)) == 2 and fetch_alerts(h.live), what="two alerts"
    )
    event = next(a for a in alerts if a["rule"] == "event")
    assert (event["subject"], event["severity"], event["state"]) == (
        "backlog",
        "critical",
        "firing",
    )
    assert event["message"] == "app-1: backlog over 10k"
    agent.post("/api/events", json={"type": "SYSTEM_ALERT_RESOLVED", "alertName": "backlog"})
    wait_for(
        lambda: [a["rule"] for a in fetch_alerts(h.live)] == ["service"], what="event resolved"
    )


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"type": "SYSTEM_REBOOT"}, 422, "event: type"),
        ({"type": "SYSTEM_SERVICE_HEALTHY", "payload": {}}, 422, "serviceName"),
        (
            [healthy("a"), {"type": "SYSTEM_SERVICE_HEALTHY", "payload": {"serviceName": ""}}],
            422,
            "events[1]",
        ),
        ([], 422, "between 1 and 256"),
        (healthy("a", host="other-host"), 403, "this caller is 'web-1'"),
    ],
)
def test_bad_events_are_refused_clearly(
    alerting: Callable[..., Harness], body: Any, status: int, needle: str
) -> None:
    h = alerting()
    r = h.live.agent("web-1").post("/api/events", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]
    assert services(h) == []


def test_readers_cannot_post_events_and_agents_cannot_read(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    with h.live.reader() as r:
        assert r.post("/api/events", json=healthy("x")).status_code == 403
    assert h.live.agent("web-1").get("/api/services").status_code == 403


def test_services_cli(
    alerting: Callable[..., Harness], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statusdash.cli.services import app

    h = alerting()
    env = cli_env(h, tmp_path, monkeypatch)
    runner = CliRunner()
    out = runner.invoke(app, ["ls"], env=env)
    assert out.exit_code == 0 and "no service has reported yet" in out.stdout
    h.live.agent("web-1").post("/api/events", json=unhealthy("nginx", "502 from upstream"))
    out = runner.invoke(app, ["ls"], env=env)
    assert out.exit_code == 0
    assert "nginx" in out.stdout and "unhealthy" in out.stdout and "502 from upstream" in out.stdout
    out = runner.invoke(app, ["ls", "--json"], env=env)

    [svc] = json.loads(out.stdout)
    assert svc["lastCheck"] == "2026-11-27T10:00:05Z" and svc["status"] == "unhealthy"
