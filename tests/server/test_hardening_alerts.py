"""Alerting cannot be flooded: per-host caps on services and event alerts, and a notification
queue that lets another host's critical alert past one host's flood (issue 10, item 15).

Everything runs against a real server on loopback with a real SQLite file and a real webhook
receiver (``tests/server/receiver.py``); ``start_alerting`` is shared with
``test_hardening_notify.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from statusdash.server.alerting import install_alerting
from statusdash.server.notify import parse_targets
from statusdash.settings import Settings
from tests.conftest import Live, RunningServer, make_settings
from tests.server.receiver import Hook, hook

__all__ = ["Hook", "hook"]


class AlertingServer(RunningServer):
    """A RunningServer whose alerting runs with short intervals and the given changes."""

    def __init__(self, settings: Settings, changes: dict[str, Any]) -> None:
        super().__init__(settings)
        self.changes = changes

    def prepare(self, app: Any) -> None:
        install_alerting(app, **self.changes)


@pytest.fixture
def start_alerting(tmp_path: Path) -> Iterator[Callable[..., Live]]:
    """``start_alerting(webhooks=[...], **config_changes)``: a live server with alerting."""
    started: list[RunningServer] = []

    def start(webhooks: list[str] | None = None, **changes: Any) -> Live:
        config: dict[str, Any] = {
            "webhooks": parse_targets(webhooks or []),
            "check_interval_s": 0.05,
            "webhook_attempts": 2,
            "webhook_backoff_s": 0.05,
            "webhook_timeout_s": 60.0,
            "handle_sighup": False,
        }
        config.update(changes)
        server = AlertingServer(make_settings(tmp_path / "data"), config).start()
        started.append(server)
        return Live(server)

    yield start
    for server in started:
        server.stop()


def wait_for(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy (bounded, generous for a loaded box)."""
    deadline = time.monotonic() + timeout
    while not (value := pred()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def service(name: str, healthy: bool = True, error: str = "") -> dict[str, Any]:
    kind = "SYSTEM_SERVICE_HEALTHY" if healthy else "SYSTEM_SERVICE_UNHEALTHY"
    payload: dict[str, Any] = {"serviceName": name}
    if error:
        payload["errorMessage"] = error
    return {"type": kind, "payload": payload}


def alert(name: str, severity: str = "warning", message: str = "", resolve: bool = False) -> Any:
    kind = "SYSTEM_ALERT_RESOLVED" if resolve else "SYSTEM_ALERT_TRIGGERED"
    payload = {"alertName": name, "severity": severity, "message": message}
    return {"type": kind, "payload": payload}


def post_events(agent: httpx.Client, events: list[dict[str, Any]]) -> httpx.Response:
    return agent.post("/api/events", json={"events": events})


# --- the caps -------------------------------------------------------------------------------------


def test_the_caps_default_to_200_services_and_50_event_alerts() -> None:
    s = Settings(_env_file=None)
    assert (s.max_services_per_host, s.max_event_alerts_per_host) == (200, 50)
    assert (s.webhook_queue_size, s.webhook_concurrency) == (1000, 8)


def test_services_past_the_cap_are_refused_whole_with_429_and_counted(
    start_alerting: Callable[..., Live],
) -> None:
    live = start_alerting(max_services_per_host=3)
    web, db = live.agent("web-1"), live.agent("db-1")
    assert post_events(web, [service("a"), service("b"), service("c")]).status_code == 200
    refused = post_events(web, [service("a", False, "down"), service("d"), service("e")])
    assert refused.status_code == 429
    body = refused.json()
    assert (body["error"], body["limit"], body["max"]) == (
        "limit_exceeded",
        "MAX_SERVICES_PER_HOST",
        3,
    )
    assert "'d'" in body["detail"] and "web-1" in body["detail"]
    assert post_events(web, [service("a", False, "down")]).status_code == 200  # known: fine
    assert post_events(db, [service("d"), service("e")]).status_code == 200  # another host
    with live.reader() as r:
        shown = {(s["host"], s["name"]): s["status"] for s in r.get("/api/services").json()}
        limits = r.get("/api/services/limits").json()
    assert ("web-1", "d") not in shown and shown[("web-1", "a")] == "unhealthy"  # nothing applied
    assert limits["max_services_per_host"] == 3
    assert limits["hosts"]["web-1"] == {
        "services": 3,
        "event_alerts": 0,
        "refused": {"MAX_SERVICES_PER_HOST": 1},
    }
    assert limits["hosts"]["db-1"]["refused"] == {}


def test_event_alerts_past_the_cap_are_refused_until_one_resolves(
    start_alerting: Callable[..., Live],
) -> None:
    live = start_alerting(max_event_alerts_per_host=2)
    web = live.agent("web-1")
    assert post_events(web, [alert("a"), alert("b"), alert("a")]).status_code == 200
    for _ in range(3):
        refused = post_events(web, [alert("c")])
        assert refused.status_code == 429
        assert refused.json()["limit"] == "MAX_EVENT_ALERTS_PER_HOST"
    assert post_events(web, [alert("a", resolve=True), alert("c")]).status_code == 200
    assert post_events(live.agent("db-1"), [alert("x"), alert("y")]).status_code == 200
    with live.reader() as r:
        limits = r.get("/api/services/limits").json()
        subjects = {(a["host"], a["subject"]) for a in r.get("/api/alerts").json()}
    assert limits["hosts"]["web-1"]["event_alerts"] == 2
    assert limits["hosts"]["web-1"]["refused"] == {"MAX_EVENT_ALERTS_PER_HOST": 3}
    assert subjects == {("web-1", "b"), ("web-1", "c"), ("db-1", "x"), ("db-1", "y")}


# --- the queue ------------------------------------------------------------------------------------


def _hosts_in_arrival_order(hook: Hook) -> list[str]:
    return [b["alert"]["host"] for b in hook.bodies()]


def test_a_flood_from_one_host_cannot_delay_another_hosts_critical_alert(
    start_alerting: Callable[..., Live], hook: Hook
) -> None:
    hook.gate.clear()  # the receiver holds every answer until the flood is queued
    live = start_alerting(
        [hook.url("/hook")], max_event_alerts_per_host=1000, webhook_concurrency=1
    )  # one delivery at a time: the order they arrive in is the order the queue gave them
    flood = [alert(f"flood-{i}") for i in range(500)]
    web = live.agent("web-1")
    for part in (flood[:250], flood[250:]):
        assert post_events(web, part).status_code == 200
    outbox = live.server.ctx.alerting.service.outbox
    wait_for(lambda: len(outbox) == 500 and hook.waiting == 1, what="the flood queued")
    assert post_events(live.agent("db-1"), [alert("db down", "critical")]).status_code == 200
    assert post_events(live.agent("cache-1"), [alert("slow")]).status_code == 200
    wait_for(lambda: len(outbox) == 502, what="the other hosts' alerts queued")
    hook.gate.set()
    wait_for(lambda: len(hook.requests) >= 6, what="deliveries")
    order = _hosts_in_arrival_order(hook)
    # One of web-1's was in flight when db-1's alert came: db-1's critical goes next, and
    # cache-1's warning takes its turn with web-1's, not after web-1's 499 others.
    assert order[:4] == ["web-1", "db-1", "web-1", "cache-1"]
    assert order[4:6] == ["web-1", "web-1"]


def test_a_full_queue_keeps_the_rest_in_the_outbox_most_urgent_first(
    start_alerting: Callable[..., Live], hook: Hook
) -> None:
    hook.gate.clear()
    live = start_alerting([hook.url("/hook")], webhook_queue=2, webhook_concurrency=1)
    assert post_events(live.agent("web-1"), [alert(f"w{i}") for i in range(10)]).status_code == 200
    outbox = live.server.ctx.alerting.service.outbox
    wait_for(lambda: len(outbox) == 10 and hook.waiting == 1, what="the first delivery held")
    assert post_events(live.agent("db-1"), [alert("db down", "critical")]).status_code == 200
    wait_for(lambda: len(outbox) == 11, what="db-1's alert in the outbox")
    time.sleep(0.3)  # several checks: only one delivery at a time reaches the receiver
    assert len(hook.requests) == 1
    hook.gate.set()
    wait_for(lambda: len(hook.requests) == 11, what="every notice delivered")
    order = _hosts_in_arrival_order(hook)
    assert order.index("db-1") <= 3  # behind the one in flight and at most the two queued
    assert sorted(
        b["alert"]["subject"] for b in hook.bodies() if b["alert"]["host"] == "web-1"
    ) == sorted(f"w{i}" for i in range(10))
