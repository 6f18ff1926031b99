"""``DELETE /api/hosts/{id}`` (``hosts rm``) against a real server and its SQLite file: the host
leaves the fleet, its alerts are resolved with a reason, the stream says so, history is kept (or
purged, rows really gone), the removal survives a restart, and a report brings the host back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from statusdash.server.alerts.lifecycle import HOST_REMOVED
from statusdash.server.jobs import PURGED_TABLES
from tests.conftest import make_report
from tests.server.harness import Harness, fetch_alerts, wait_for
from tests.server.test_stream import next_of, ws_url


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def host_rows(db: Path, host_id: int) -> dict[str, int]:
    """Rows of ``host_id`` in every table a purge empties."""
    return {
        t: rows(db, f"SELECT count(*) FROM {t} WHERE host_id = ?", host_id)[0][0]  # noqa: S608
        for t in PURGED_TABLES
    }


def fleet(h: Harness) -> list[str]:
    with h.live.reader() as r:
        return [x["host"] for x in r.get("/api/hosts").json()]


def overall(h: Harness) -> dict[str, Any]:
    with h.live.reader() as r:
        body: dict[str, Any] = r.get("/api/hosts/sentiment/overall").json()
        return body


def service_event(name: str) -> dict[str, Any]:
    return {"type": "SYSTEM_SERVICE_UNHEALTHY", "serviceName": name, "errorMessage": "down"}


def test_rm_leaves_the_fleet_resolves_alerts_keeps_history_and_a_report_brings_it_back(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    db = h.live.settings.db_path
    web, other = h.live.agent("web-1"), h.live.agent("db-1")
    assert web.post("/api/metrics/report", json=make_report("web-1", cpu=97)).status_code == 200
    assert other.post("/api/metrics/report", json=make_report("db-1")).status_code == 200
    assert web.post("/api/events", json=service_event("nginx")).status_code == 200
    wait_for(lambda: len(fetch_alerts(h.live)) == 2, what="cpu and service alerts of web-1")
    assert overall(h)["status"] == "unhealthy"
    bearer = {"Authorization": f"Bearer {h.live.token()}"}
    with connect(ws_url(h), additional_headers=bearer) as ws, h.live.reader() as r:
        resp = r.delete("/api/hosts/web-1")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "host": "web-1",
            "purged": False,
            "alerts_resolved": 2,
            "services": ["nginx"],
        }
        assert next_of(ws, "service.removed") == {"host": "web-1", "name": "nginx"}
        assert next_of(ws, "host.removed") == {"host": "web-1", "purged": False, "by": "admin"}
        assert r.get("/api/hosts/web-1").status_code == 404
        assert r.get("/api/services").json() == []
    assert fleet(h) == ["db-1"]
    wait_for(lambda: not fetch_alerts(h.live), what="web-1's alerts resolved")
    resolved = [a for a in fetch_alerts(h.live, "resolved") if a["host"] == "web-1"]
    assert {a["rule"] for a in resolved} == {"cpu", "service"}
    assert all(a["resolved_by"] == "admin" for a in resolved)
    assert all(a["resolved_reason"] == HOST_REMOVED for a in resolved)
    s = overall(h)
    assert (s["status"], s["hosts"]["total"], s["alerts_active"]) == ("healthy", 1, 0)
    # History stays until retention: the samples are still in the file, the row is marked.
    [(host_id, removed_at)] = rows(db, "SELECT id, removed_at FROM hosts WHERE name = 'web-1'")
    assert removed_at is not None and host_rows(db, host_id)["samples"] == 1
    # A removed host raises no offline alert, however long it stays away.
    h.clock.advance(3600)
    wait_for(lambda: [a for a in fetch_alerts(h.live) if a["rule"] == "offline"], what="db-1")
    assert {a["host"] for a in fetch_alerts(h.live)} == {"db-1"}
    # The removal survives a restart: the cache is not rebuilt with web-1.
    h.restart()
    assert fleet(h) == ["db-1"]
    # ... and a report brings it back, history and all.
    web = h.live.agent("web-1")
    assert web.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
    assert fleet(h) == ["db-1", "web-1"]
    assert rows(db, "SELECT id, removed_at FROM hosts WHERE name = 'web-1'") == [(host_id, None)]
    assert host_rows(db, host_id)["samples"] == 2
    h.restart()  # the come-back is stored too
    assert fleet(h) == ["db-1", "web-1"]


def test_rm_purge_deletes_samples_and_tiers_in_the_file(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    db = h.live.settings.db_path
    # Aligned to the hour, so 18 reports ten minutes apart fill exactly three hourly buckets
    # whatever the minute the test runs at.
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    for host in ("web-1", "db-1"):
        batch = [make_report(host, at=start + timedelta(minutes=10 * i)) for i in range(18)]
        resp = h.live.agent(host).post("/api/metrics/batch", json={"reports": batch})
        assert resp.status_code == 200, resp.text
    web_id, db_id = (
        rows(db, "SELECT id FROM hosts WHERE name = ?", n)[0][0] for n in ("web-1", "db-1")
    )
    before = host_rows(db, web_id)
    assert before["samples"] == 18 and before["samples_pending"] == 18
    h.server.ctx.jobs.scheduler.run_now("rollup")
    after_rollup = host_rows(db, web_id)
    assert after_rollup["rollup_1m"] == 18 and after_rollup["rollup_1h"] == 3
    kept = host_rows(db, db_id)
    # A report not rolled up yet is purged from samples_pending too.
    h.live.agent("web-1").post("/api/metrics/report", json=make_report("web-1"))
    assert host_rows(db, web_id)["samples_pending"] == 1
    with h.live.reader() as r:
        resp = r.delete("/api/hosts/web-1", params={"purge": "true"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["purged"] is True
        assert r.get("/api/hosts/web-1/history", params={"since": "6h"}).status_code == 404
    assert host_rows(db, web_id) == dict.fromkeys(PURGED_TABLES, 0)
    assert rows(db, "SELECT count(*) FROM hosts WHERE name = 'web-1'") == [(0,)]
    assert host_rows(db, db_id) == kept  # nobody else's rows
    # A purged host that reports again starts a new history.
    assert h.live.agent("web-1").post("/api/metrics/report", json=make_report("web-1")).is_success
    [(new_id,)] = rows(db, "SELECT id FROM hosts WHERE name = 'web-1'")
    assert new_id != web_id and host_rows(db, new_id)["samples"] == 1
    assert fleet(h) == ["db-1", "web-1"]


def test_a_removed_host_can_still_be_purged_later(alerting: Callable[..., Harness]) -> None:
    h = alerting()
    db = h.live.settings.db_path
    h.live.agent("web-1").post("/api/metrics/report", json=make_report("web-1"))
    with h.live.reader() as r:
        assert r.delete("/api/hosts/web-1").status_code == 200
        resp = r.delete("/api/hosts/web-1", params={"purge": True})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "host": "web-1",
            "purged": True,
            "alerts_resolved": 0,
            "services": [],
        }
    assert rows(db, "SELECT count(*) FROM samples") == [(0,)]


def test_rm_of_an_unknown_or_malformed_host_is_a_clear_4xx(
    alerting: Callable[..., Harness],
) -> None:
    h = alerting()
    for host in ("web-1", "db-1"):
        h.live.agent(host).post("/api/metrics/report", json=make_report(host))
    with h.live.reader() as r:
        resp = r.delete("/api/hosts/nope")
        assert resp.status_code == 404
        assert resp.json() == {
            "error": "not_found",
            "detail": "no host named 'nope'; the hosts are: db-1, web-1",
        }
        resp = r.delete("/api/hosts/Not_A_Host!")
        assert resp.status_code == 422 and set(resp.json()) >= {"error", "detail"}
        resp = r.delete("/api/hosts/web-1", params={"purge": "maybe"})
        assert resp.status_code == 422 and "purge" in resp.json()["detail"]
    # Readers only: an agent or an anonymous caller cannot remove hosts.
    assert h.live.agent("web-1").delete("/api/hosts/db-1").status_code == 403
    assert httpx.delete(f"{h.live.url}/api/hosts/db-1").status_code == 401
    assert fleet(h) == ["db-1", "web-1"]
