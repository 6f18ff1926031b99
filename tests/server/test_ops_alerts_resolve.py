"""Resolving by hand, ending silences and refusing silences for what does not exist, against a
real server (a local webhook receiver at the edge for the notices a silence held back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from websockets.sync.client import connect

from statusdash.server.alerts.lifecycle import BY_HAND
from tests.conftest import make_report
from tests.server.harness import Harness, fetch_alerts, wait_for
from tests.server.receiver import Receiver, receiver  # noqa: F401  (the fixture)
from tests.server.test_stream import next_of, ws_url

PENDING_CPU = """
[rules.cpu]
threshold = 90
clear = 80
for = "10m"
"""


def firing_cpu(h: Harness, host: str = "web-1") -> dict[str, Any]:
    h.live.agent(host).post("/api/metrics/report", json=make_report(host, cpu=97))
    [a] = wait_for(lambda: [a for a in fetch_alerts(h.live) if a["host"] == host], what="cpu")
    alert: dict[str, Any] = a
    return alert


def test_resolve_by_hand_records_who_and_why_and_survives_a_restart(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    a = firing_cpu(h)
    bearer = {"Authorization": f"Bearer {h.live.token()}"}
    with connect(ws_url(h), additional_headers=bearer) as ws, h.live.reader() as r:
        resp = r.post(f"/api/alerts/{a['id']}/resolve", json={"reason": "load test, expected"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["id"], body["state"], body["resolved_by"]) == (a["id"], "resolved", "admin")
        assert body["resolved_reason"] == "load test, expected" and body["resolved_at"]
        assert next_of(ws, "alert.resolved")["resolved_reason"] == "load test, expected"
        assert fetch_alerts(h.live) == []
        # Twice: the alert is resolved already (409); an unknown id is 404; both JSON.
        again = r.post(f"/api/alerts/{a['id']}/resolve")
        assert again.status_code == 409
        assert again.json()["detail"] == f"alert {a['id']} is already resolved"
        missing = r.post("/api/alerts/999999/resolve")
        assert missing.status_code == 404
        assert missing.json() == {"error": "not_found", "detail": "no alert with id 999999"}
        for bad in ({"reason": 5}, {"why": "x"}, {"reason": "x" * 501}):
            resp = r.post(f"/api/alerts/{a['id']}/resolve", json=bad)
            assert resp.status_code == 422 and set(resp.json()) >= {"error", "detail"}
        assert r.post(f"/api/alerts/{a['id']}/resolve", content=b"{").status_code in (400, 422)
    h.restart()
    [stored] = [x for x in fetch_alerts(h.live, "resolved") if x["id"] == a["id"]]
    assert (stored["resolved_by"], stored["resolved_reason"]) == ("admin", "load test, expected")
    # The condition still holds: the next report opens a new alert (silence it to keep quiet).
    assert firing_cpu(h)["id"] != a["id"]


def test_a_pending_alert_resolved_by_hand_is_kept_with_a_default_reason(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting(rules=PENDING_CPU)
    h.live.agent("web-1").post("/api/metrics/report", json=make_report("web-1", cpu=97))
    [a] = wait_for(lambda: fetch_alerts(h.live), what="pending cpu alert")
    assert a["state"] == "pending"
    with h.live.reader() as r:
        body = r.post(f"/api/alerts/{a['id']}/resolve").json()
    assert (body["state"], body["resolved_reason"]) == ("resolved", BY_HAND)
    assert [x["id"] for x in fetch_alerts(h.live, "resolved")] == [a["id"]]


def test_silence_refuses_a_host_or_rule_that_does_not_exist(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    for host in ("web-1", "web-2", "db-1"):
        h.live.agent(host).post("/api/metrics/report", json=make_report(host))
    with h.live.reader() as r:
        resp = r.post("/api/alerts/silences", json={"host": "nope", "for": "1h"})
        assert resp.status_code == 422
        assert resp.json() == {
            "error": "validation_error",
            "detail": "no host matches 'nope'; the hosts are: db-1, web-1, web-2",
        }
        resp = r.post("/api/alerts/silences", json={"host": "mail-*", "for": "1h"})
        assert resp.status_code == 422 and "no host matches 'mail-*'" in resp.json()["detail"]
        resp = r.post("/api/alerts/silences", json={"rule": "bogus", "for": "1h"})
        assert resp.status_code == 422
        assert "must be one of cpu, memory, disk, offline, service, event" in resp.text
        assert r.get("/api/alerts/silences").json() == []
        resp = r.post("/api/alerts/silences", json={"host": "web-*", "for": "1h"})
        assert resp.status_code == 201 and resp.json()["host"] == "web-*"


def test_unsilence_ends_a_silence_and_sends_what_it_held_back(
    alerting: Callable[..., Harness],
    receiver: Receiver,  # noqa: F811
) -> None:
    h = alerting(webhooks=[receiver.url("/hook")])
    h.live.agent("web-1").post("/api/metrics/report", json=make_report("web-1"))
    with h.live.reader() as r:
        made = r.post("/api/alerts/silences", json={"host": "web-1", "for": "2h"}).json()
        a = firing_cpu(h)
        # Muted: nothing goes out while the silence holds (a few check passes).
        h.clock.advance(1)
        wait_for(lambda: h.server.ctx.alerting.service.outbox, what="the notice owed")
        assert receiver.seen("/hook") == []
        resp = r.delete(f"/api/alerts/silences/{made['id']}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == made["id"]
        assert r.get("/api/alerts/silences").json() == []
        [sent] = wait_for(lambda: receiver.seen("/hook"), what="the held-back notice")
        assert json.loads(sent)["alert"]["id"] == a["id"]
        again = r.delete(f"/api/alerts/silences/{made['id']}")
        assert again.status_code == 404
        assert again.json()["detail"] == f"no silence {made['id']} is in force (in force: none)"
        assert r.delete("/api/alerts/silences/0").status_code == 422
    h.restart()  # ended for good, not only in memory
    with h.live.reader() as r:
        assert r.get("/api/alerts/silences").json() == []
