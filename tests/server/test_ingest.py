"""Ingest over a real socket into a real SQLite file: idempotence, errors, nothing half-written."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import httpx
import pytest

from statusdash.wire import MAX_REPORT_BYTES
from tests.conftest import Live, make_report


def rows(live: Live) -> int:
    with sqlite3.connect(live.settings.db_path) as conn:
        return int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])


def test_report_is_stored_once_even_when_replayed(live_server: Live) -> None:
    agent = live_server.agent("web-1")
    report = make_report("web-1")
    first = agent.post("/api/metrics/report", json=report)
    again = agent.post("/api/metrics/report", json=report)
    assert first.status_code == 200 and first.json() == {
        "accepted": 1,
        "duplicates": 0,
        "high_water": ANY,
    }
    assert again.status_code == 200 and again.json() == {
        "accepted": 0,
        "duplicates": 1,
        "high_water": ANY,
    }
    assert rows(live_server) == 1


def test_batch_counts_accepted_and_duplicates(live_server: Live) -> None:
    agent = live_server.agent("web-1")
    old = make_report("web-1")
    agent.post("/api/metrics/report", json=old)
    fresh = [make_report("web-1") for _ in range(5)]
    r = agent.post("/api/metrics/batch", json={"reports": [old, *fresh, fresh[0]]})
    assert r.json() == {"accepted": 5, "duplicates": 2, "high_water": ANY}
    assert rows(live_server) == 6


def test_concurrent_reports_are_all_committed(live_server: Live) -> None:
    hosts = [f"h{i}" for i in range(8)]
    clients = {h: live_server.agent(h) for h in hosts}
    reports = [(h, make_report(h)) for h in hosts for _ in range(25)]

    def send(item: tuple[str, dict[str, object]]) -> dict[str, int]:
        host, rep = item
        resp: dict[str, int] = clients[host].post("/api/metrics/report", json=rep).json()
        return resp

    with ThreadPoolExecutor(16) as pool:
        acks = list(pool.map(send, reports))
    assert all(a == {"accepted": 1, "duplicates": 0, "high_water": ANY} for a in acks)
    assert rows(live_server) == len(reports)
    listed = {h["host"] for h in live_server.reader().get("/api/hosts").json()}
    assert listed == set(hosts)


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda r: r["cpu"].update(percent=101), 422, "cpu.percent"),
        (lambda r: r["memory"].update(total=-1), 422, "memory.total"),
        (lambda r: r.update(host="Bad_Host!"), 422, "host"),
        (lambda r: r.update(report_id="not-a-uuid"), 422, "report_id"),
        (lambda r: r.update(interval_s="ten"), 422, "interval_s"),
        (lambda r: r.pop("collected_at"), 422, "collected_at"),
        (lambda r: r.update(schema_version=99), 422, "schema_version"),
        (lambda r: r["disks"][0].update(percent=-3), 422, "disks.0.percent"),
        (
            lambda r: r.update(collected_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()),
            422,
            "collected_at",
        ),
        (
            lambda r: r.update(collected_at=(datetime.now(UTC) - timedelta(days=40)).isoformat()),
            422,
            "collected_at",
        ),
        (lambda r: r.update(collected_at="2026-11-27T10:00:00"), 422, "collected_at"),
    ],
)
def test_invalid_reports_say_which_field(live_server: Live, mutate, status, field) -> None:  # type: ignore[no-untyped-def]
    report = make_report("web-1")
    mutate(report)
    r = live_server.agent("web-1").post("/api/metrics/report", json=report)
    assert r.status_code == status
    body = r.json()
    assert body["error"] == "validation_error"
    assert field in body["detail"]
    assert rows(live_server) == 0


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"[1, 2]", 422, "validation_error"),
        (b"", 400, "malformed_json"),
    ],
)
def test_malformed_bodies(live_server: Live, raw: bytes, status: int, error: str) -> None:
    r = live_server.agent("web-1").post(
        "/api/metrics/report", content=raw, headers={"Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["error"]) == (status, error)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(live_server: Live, literal: str) -> None:
    text = json.dumps(make_report("web-1")).replace('"percent": 12.5', f'"percent": {literal}', 1)
    assert literal in text
    r = live_server.agent("web-1").post(
        "/api/metrics/report", content=text, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert "cpu.percent" in r.json()["detail"]
    assert rows(live_server) == 0


def test_oversize_body_is_refused_before_parsing(live_server: Live) -> None:
    body = b"{" + b" " * (MAX_REPORT_BYTES + 10) + b"}"
    r = live_server.agent("web-1").post("/api/metrics/report", content=body)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_REPORT_BYTES // 4096 + 2):
            yield b" " * 4096

    r = live_server.agent("web-1").post("/api/metrics/report", content=chunks())
    assert r.status_code == 413


def test_report_for_another_host_is_refused_and_not_stored(live_server: Live) -> None:
    r = live_server.agent("web-1").post("/api/metrics/report", json=make_report("db-1"))
    assert r.status_code == 403 and r.json()["error"] == "host_mismatch"
    batch = {"reports": [make_report("web-1"), make_report("db-1")]}
    r = live_server.agent("web-1").post("/api/metrics/batch", json=batch)
    assert r.status_code == 403
    assert rows(live_server) == 0


def test_unknown_fields_are_ignored(live_server: Live) -> None:
    report = make_report("web-1", gpu={"percent": 3})
    report["cpu"]["future_field"] = 1
    r = live_server.agent("web-1").post("/api/metrics/report", json=report)
    assert r.json() == {"accepted": 1, "duplicates": 0, "high_water": ANY}


def test_bad_api_key_is_refused(live_server: Live) -> None:
    live_server.api_key("web-1")
    for key in ("nope", "sdk_abc_def", f"sdk_{uuid.uuid4().hex[:12]}_x"):
        r = httpx.post(
            f"{live_server.url}/api/metrics/report",
            json=make_report("web-1"),
            headers={"X-API-Key": key},
        )
        assert r.status_code == 401, key
        assert r.json()["error"] == "unauthorized"
    assert rows(live_server) == 0


def test_data_survives_a_restart(live_server: Live) -> None:
    agent = live_server.agent("web-1")
    reports = [
        make_report("web-1", at=datetime.now(UTC) - timedelta(seconds=30 - i), cpu=i)
        for i in range(3)
    ]
    for rep in reports:
        assert agent.post("/api/metrics/report", json=rep).status_code == 200
    live_server.server.stop()
    live_server.server.start()
    reader = live_server.reader()
    hosts = reader.get("/api/hosts").json()
    assert [h["host"] for h in hosts] == ["web-1"]
    assert hosts[0]["cpu_percent"] == 2  # the newest report, rebuilt from the database
    # the replay after the restart is still recognised as a duplicate
    again = live_server.agent("web-1").post("/api/metrics/report", json=reports[0])
    assert again.json() == {"accepted": 0, "duplicates": 1, "high_water": ANY}
    assert rows(live_server) == 3


def test_reports_in_the_same_second_are_all_stored_and_replays_are_not(live_server: Live) -> None:
    """Reports of one host with the same (or nearly the same) collected_at are told apart by
    their whole report_id, including ids that differ only in their low or high 64 bits."""
    agent = live_server.agent("web-1")
    at = datetime.now(UTC).replace(microsecond=250_000)
    ids = [uuid.UUID(int=i) for i in (1, 2)] + [uuid.UUID(int=i << 64) for i in (1, 2)]
    same = [make_report("web-1", at=at, report_id=str(i)) for i in ids]
    same += [make_report("web-1", at=at + timedelta(microseconds=d)) for d in (0, 1, 700_000)]
    new, dup = (
        {"accepted": 1, "duplicates": 0, "high_water": ANY},
        {"accepted": 0, "duplicates": 1, "high_water": ANY},
    )
    for rep in same[:2]:  # one at a time: found in the database, not in the group
        assert agent.post("/api/metrics/report", json=rep).json() == new
    r = agent.post("/api/metrics/batch", json={"reports": same[2:]})
    assert r.json() == {"accepted": len(same) - 2, "duplicates": 0, "high_water": ANY}
    assert rows(live_server) == len(same)
    for rep in same[:3]:
        assert agent.post("/api/metrics/report", json=rep).json() == dup
    r = agent.post("/api/metrics/batch", json={"reports": [*same, make_report("web-1", at=at)]})
    assert r.json() == {"accepted": 1, "duplicates": len(same), "high_water": ANY}
    assert rows(live_server) == len(same) + 1


def test_late_reports_replayed_after_a_restart_are_duplicates(live_server: Live) -> None:
    """A spool catch-up (hours old, oldest first) whose acknowledgement was lost is sent again
    after the server restarted: it is acknowledged, stored once, and history counts it once."""
    agent = live_server.agent("web-1")
    start = datetime.now(UTC) - timedelta(hours=30)
    spool = [make_report("web-1", at=start + timedelta(seconds=10 * i)) for i in range(120)]
    assert agent.post("/api/metrics/batch", json={"reports": spool[:80]}).json() == {
        "accepted": 80,
        "duplicates": 0,
        "high_water": ANY,
    }
    live_server.server.stop()
    live_server.server.start()
    agent = live_server.agent("web-1")
    r = agent.post("/api/metrics/batch", json={"reports": spool})
    assert r.json() == {"accepted": 40, "duplicates": 80, "high_water": ANY}
    assert rows(live_server) == 120
    hist = live_server.reader().get(
        "/api/hosts/web-1/history", params={"since": "2d", "points": 48, "metric": "cpu.percent"}
    )
    assert sum(p["count"] for p in hist.json()["points"]) == 120
