"""Ingest answers a refused batch with the field path and the index of the first bad report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Live, make_report
from tests.server.test_ingest import rows


def test_a_bad_report_in_a_batch_is_named_by_index_and_field(live_server: Live) -> None:
    reports = [make_report("web-1") for _ in range(5)]
    reports[3]["cpu"]["percent"] = 250.0
    r = live_server.agent("web-1").post("/api/metrics/batch", json={"reports": reports})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_error"
    assert body["report_index"] == 3
    assert body["fields"] == [
        {"field": "reports.3.cpu.percent", "problem": body["fields"][0]["problem"]}
    ]
    assert "<= 100" in body["fields"][0]["problem"]
    assert body["detail"].startswith("reports.3.cpu.percent: ")
    assert rows(live_server) == 0  # all or nothing


def test_a_report_too_far_in_the_future_in_a_batch_is_named_too(live_server: Live) -> None:
    late = make_report("web-1", at=datetime.now(UTC) + timedelta(hours=2))
    r = live_server.agent("web-1").post(
        "/api/metrics/batch", json={"reports": [make_report("web-1"), late]}
    )
    assert r.status_code == 422
    assert r.json()["report_index"] == 1
    assert r.json()["fields"][0]["field"] == "reports.1.collected_at"
    assert rows(live_server) == 0
