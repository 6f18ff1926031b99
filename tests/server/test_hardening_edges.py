"""Issue 10, item 17: odd inputs at the edges get a 4xx with the JSON error body, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import Live, make_report

DEEP = "[" * 100_000 + "]" * 100_000


def assert_refused(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "detail"}


@pytest.mark.parametrize(
    "body",
    [
        DEEP,
        json.dumps({"type": "SYSTEM_SERVICE_HEALTHY", "serviceName": "a"})[:-1]
        + f', "metrics": {{"x": {DEEP}}}}}',
    ],
    ids=["whole-body", "in-metrics"],
)
def test_a_deeply_nested_events_body_is_malformed(live_server: Live, body: str) -> None:
    r = live_server.agent("web-1").post(
        "/api/events", content=body, headers={"content-type": "application/json"}
    )
    assert_refused(r, 400)
    assert "nested too deeply" in r.json()["detail"]


def test_metrics_nested_past_the_depth_cap_are_refused(live_server: Live) -> None:
    """Deep enough to parse in Python, too deep for what validates, stores and streams it."""
    nested: object = 1
    for _ in range(600):
        nested = {"x": nested}
    event = {"type": "SYSTEM_SERVICE_HEALTHY", "serviceName": "a", "metrics": {"m": nested}}
    r = live_server.agent("web-1").post("/api/events", content=json.dumps(event))
    assert_refused(r, 422)
    assert "nests deeper than 16 levels" in r.json()["detail"]
    assert live_server.reader().get("/api/services").json() == []


@pytest.mark.parametrize("path", ["/api/metrics/report", "/api/metrics/batch"])
def test_a_deeply_nested_report_is_malformed(live_server: Live, path: str) -> None:
    body = json.dumps(make_report("web-1"))[:-1] + f', "extra": {DEEP}}}'
    if path.endswith("batch"):
        body = '{"reports": [' + body + "]}"
    r = live_server.agent("web-1").post(path, content=body)
    assert_refused(r, 400)
    assert r.json()["error"] == "malformed_json"


@pytest.mark.parametrize("since", ["99999999999999999999d", "1e400s", "-5d", "999999999999w"])
def test_a_history_range_beyond_any_date_is_a_422(live_server: Live, since: str) -> None:
    live_server.agent("web-1").post("/api/metrics/report", json=make_report("web-1"))
    r = live_server.reader().get("/api/hosts/web-1/history", params={"since": since})
    assert_refused(r, 422)


@pytest.mark.parametrize("alert_id", ["99999999999999999999999", str(2**63), "0", "-1"])
def test_an_alert_id_beyond_64_bits_is_a_422(live_server: Live, alert_id: str) -> None:
    r = live_server.reader().post(f"/api/alerts/{alert_id}/ack")
    assert_refused(r, 422)
    assert r.json()["fields"][0]["field"] == "alert_id"


def test_the_largest_alert_id_is_simply_not_found(live_server: Live) -> None:
    assert_refused(live_server.reader().post(f"/api/alerts/{2**63 - 1}/ack"), 404)
