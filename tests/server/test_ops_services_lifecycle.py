"""Service checks that end and one status vocabulary, against a real server: a check the agent
stops listing in its reports is dropped (after its expected period, its alert resolved), an
older agent's report without a list and a catch-up report drop nothing, services posted only
through ``/api/events`` stay, a check that cannot run is ``unknown`` everywhere, and CHECKED is
the time the check ran."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.sync.client import connect

from statusdash.agent.checks.run import CheckResult
from statusdash.agent.monitor import to_event
from statusdash.server.alerts.lifecycle import CHECK_REMOVED
from tests.conftest import make_report
from tests.server.harness import Harness, fetch_alerts, wait_for
from tests.server.test_stream import next_of, ws_url

EXPECT_S = 30.0


def result(name: str, status: str = "healthy", at: datetime | None = None) -> CheckResult:
    """One check result as the agent's checker makes it (and copies into its reports)."""
    when = (at or datetime.now(UTC)).isoformat()
    detail = "" if status == "healthy" else f"{name} is {status}"
    return CheckResult(
        name=name, kind="tcp", status=status, checked_at=when, latency_ms=1.5, detail=detail
    )


def post_results(h: Harness, *results: CheckResult) -> None:
    """The agent's events for ``results``, built by the agent's own ``to_event``."""
    events = [to_event(r, EXPECT_S) for r in results]
    resp = h.live.agent("web-1").post("/api/events", json=events)
    assert resp.status_code == 200, resp.text


def report(h: Harness, names: list[str], at: datetime | None = None) -> None:
    """A report from web-1 whose ``services`` lists ``names`` (healthy)."""
    listed = [dict(result(n)) for n in names]
    body = make_report("web-1", at=at, services=listed)
    resp = h.live.agent("web-1").post("/api/metrics/report", json=body)
    assert resp.status_code == 200, resp.text


def services(h: Harness) -> dict[str, dict[str, Any]]:
    with h.live.reader() as r:
        return {s["name"]: s for s in r.get("/api/services").json()}


def event_only(name: str) -> dict[str, Any]:
    return {"type": "SYSTEM_SERVICE_HEALTHY", "serviceName": name, "expectedWithinS": EXPECT_S}


def test_a_check_the_agent_stops_listing_is_dropped_and_its_alert_resolved(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    post_results(h, result("nginx"), result("redis", "unhealthy"))
    h.live.agent("web-1").post("/api/events", json=event_only("backup-job"))
    [alert] = wait_for(lambda: fetch_alerts(h.live), what="redis alert")
    assert (alert["rule"], alert["subject"]) == ("service", "redis")
    report(h, ["nginx", "redis"])
    report(h, ["nginx"])  # redis left out: not yet (a slow check may not have finished)
    assert set(services(h)) == {"nginx", "redis", "backup-job"}
    h.clock.advance(EXPECT_S / 2)
    post_results(h, result("redis", "unhealthy"))  # still run: the count starts again
    h.clock.advance(EXPECT_S / 2 + 1)
    report(h, ["nginx"])
    assert set(services(h)) == {"nginx", "redis", "backup-job"}
    h.clock.advance(EXPECT_S + 1)
    bearer = {"Authorization": f"Bearer {h.live.token()}"}
    with connect(ws_url(h), additional_headers=bearer) as ws:
        report(h, ["nginx"])
        assert next_of(ws, "service.removed") == {"host": "web-1", "name": "redis"}
        closed = next_of(ws, "alert.resolved")
        assert (closed["id"], closed["resolved_reason"]) == (alert["id"], CHECK_REMOVED)
    # Gone everywhere; the service only posted as events (never listed) stays.
    assert set(services(h)) == {"nginx", "backup-job"}
    with h.live.reader() as r:
        names = {s["name"] for s in r.get("/api/hosts/sentiment/overall").json()["services"]}
    assert names == {"nginx", "backup-job"}
    wait_for(lambda: not fetch_alerts(h.live), what="redis alert resolved")
    # ... also after a restart (the row is deleted, not just hidden).
    h.restart()
    assert set(services(h)) == {"nginx", "backup-job"}


def test_an_older_agent_or_a_catch_up_report_drops_nothing(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    post_results(h, result("nginx"), result("redis"))
    now = datetime.now(UTC)
    report(h, ["nginx", "redis"], at=now)
    h.clock.advance(EXPECT_S + 1)
    # An older agent sends no list at all (the field is absent, so: empty), for a long while.
    for _ in range(2):
        old = make_report("web-1")
        del old["services"]
        assert h.live.agent("web-1").post("/api/metrics/report", json=old).status_code == 200
        h.clock.advance(EXPECT_S + 1)
    assert set(services(h)) == {"nginx", "redis"}
    now = datetime.now(UTC)
    report(h, ["nginx", "redis"], at=now)
    # A spooled report from before the newest one, listing less, is history, not a decision.
    stale = [make_report("web-1", at=now - timedelta(seconds=s), services=[]) for s in (30, 20)]
    stale.append(make_report("web-1", at=now - timedelta(seconds=10), services=[result("nginx")]))
    assert h.live.agent("web-1").post("/api/metrics/batch", json={"reports": stale}).is_success
    h.clock.advance(EXPECT_S + 1)
    h.live.agent("web-1").post("/api/metrics/batch", json={"reports": stale[-1:]})
    assert set(services(h)) == {"nginx", "redis"}


def test_what_the_agent_listed_survives_a_restart(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    post_results(h, result("nginx"), result("redis"))
    report(h, ["nginx", "redis"])
    h.restart()  # the newest report (with its list) is the host row's, read back at start
    report(h, ["nginx"])
    h.clock.advance(EXPECT_S + 1)
    report(h, ["nginx"])
    assert set(services(h)) == {"nginx"}


def test_a_check_that_cannot_run_is_unknown_in_every_view(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    ran_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=40)
    post_results(h, result("nginx", at=ran_at), result("postgres", "unknown", at=ran_at))
    svc = services(h)
    assert svc["postgres"]["status"] == "unknown"
    assert svc["postgres"]["error"] == "postgres is unknown"
    # CHECKED is when the check ran (the agent's time), not when the event arrived.
    for name in ("nginx", "postgres"):
        assert datetime.fromisoformat(svc[name]["lastCheck"]) == ran_at
    with h.live.reader() as r:
        s = r.get("/api/hosts/sentiment/overall").json()
    assert {x["name"]: x["status"] for x in s["services"]} == {
        "nginx": "healthy",
        "postgres": "unknown",
    }
    assert s["status"] == "degraded"  # not known to be down: not unhealthy, not healthy
    assert fetch_alerts(h.live) == []  # unknown pages no one
    # A real failure afterwards still alerts, and unknown leaves that alert as it is.
    post_results(h, result("postgres", "unhealthy"))
    [a] = wait_for(lambda: fetch_alerts(h.live), what="postgres alert")
    post_results(h, result("postgres", "unknown"))
    assert [x["id"] for x in fetch_alerts(h.live)] == [a["id"]]
    assert services(h)["postgres"]["status"] == "unknown"


def test_a_report_moves_checked_to_when_the_check_last_ran(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=50)
    post_results(h, result("nginx", at=t0), result("redis", "unhealthy", at=t0))
    t1 = t0 + timedelta(seconds=30)
    listed = [dict(result("nginx", at=t1)), dict(result("redis", at=t1))]  # redis: healthy now
    body = make_report("web-1", services=listed)
    assert h.live.agent("web-1").post("/api/metrics/report", json=body).is_success
    svc = services(h)
    assert datetime.fromisoformat(svc["nginx"]["lastCheck"]) == t1
    # A status the map does not hold yet waits for its event: neither time nor status move.
    assert (svc["redis"]["status"], datetime.fromisoformat(svc["redis"]["lastCheck"])) == (
        "unhealthy",
        t0,
    )
    older = [dict(result("nginx", at=t0 - timedelta(seconds=5)))]
    stale = make_report("web-1", at=datetime.now(UTC) - timedelta(seconds=5), services=older)
    assert h.live.agent("web-1").post("/api/metrics/report", json=stale).is_success
    assert datetime.fromisoformat(services(h)["nginx"]["lastCheck"]) == t1
