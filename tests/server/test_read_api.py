"""The read API over a real server: fleet, one host, history, sentiment, status ageing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from statusdash.schema import HistorySeries, HostDetail, HostStatus, HostSummary, Sentiment
from statusdash.server.cache import HostState, host_status
from tests.conftest import Live, make_report


@pytest.fixture
def seeded(live_server: Live) -> Live:
    now = datetime.now(UTC)
    agent = live_server.agent("web-1")
    batch = [
        make_report("web-1", at=now - timedelta(minutes=60 - i), cpu=float(i), mem=50.0)
        for i in range(60)
    ]
    assert agent.post("/api/metrics/batch", json={"reports": batch}).status_code == 200
    live_server.agent("db-1").post("/api/metrics/report", json=make_report("db-1", disk=93.0))
    return live_server


def test_fleet_lists_every_host_with_its_latest_summary(seeded: Live) -> None:
    hosts = [HostSummary.model_validate(h) for h in seeded.reader().get("/api/hosts").json()]
    assert [h.host for h in hosts] == ["db-1", "web-1"]
    web = hosts[1]
    assert web.cpu_percent == 59.0 and web.memory_percent == 50.0
    assert web.status == HostStatus.up
    assert hosts[0].disk_percent == 93.0 and hosts[0].disk_mount == "/"


def test_host_detail_and_unknown_host(seeded: Live) -> None:
    reader = seeded.reader()
    detail = HostDetail.model_validate(reader.get("/api/hosts/db-1").json())
    assert detail.report.host == "db-1" and detail.report.disks[0].percent == 93.0
    missing = reader.get("/api/hosts/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    bad = reader.get("/api/hosts/NOT_VALID")
    assert bad.status_code == 422 and bad.json()["error"] == "validation_error"


def test_history_downsamples_into_buckets(seeded: Live) -> None:
    r = seeded.reader().get(
        "/api/hosts/web-1/history", params={"metric": "cpu.percent", "since": "61m", "points": 6}
    )
    series = HistorySeries.model_validate(r.json())
    assert 5 <= len(series.points) <= 6
    assert sum(p.count for p in series.points) == 60
    for p in series.points:
        assert p.min <= p.avg <= p.max
    assert series.points[-1].max == 59.0
    assert series.points[0].min == 0.0


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"metric": "cpu.bogus"}, "cpu.bogus"),
        ({"since": "yesterday"}, "since"),
        ({"points": 0}, "points"),
        ({"since": "1h", "until": "2h"}, "before"),
    ],
)
def test_history_rejects_bad_queries(
    seeded: Live, params: dict[str, str | int], needle: str
) -> None:
    r = seeded.reader().get("/api/hosts/web-1/history", params=params)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_history_accepts_iso_times(seeded: Live) -> None:
    now = datetime.now(UTC)
    params: dict[str, str | int] = {
        "metric": "memory.percent",
        "since": (now - timedelta(minutes=30)).isoformat(),
        "until": now.isoformat(),
        "points": 3,
    }
    series = seeded.reader().get("/api/hosts/web-1/history", params=params).json()
    assert {p["avg"] for p in series["points"]} == {50.0}


def test_sentiment_in_the_seed_shape(seeded: Live) -> None:
    body = seeded.reader().get("/api/hosts/sentiment/overall").json()
    s = Sentiment.model_validate(body)
    assert s.status == "healthy"
    assert s.hosts.total == 2 and s.hosts.up == 2
    assert set(body) >= {"status", "services", "hosts"}


def test_status_ages_from_up_to_stale_to_down() -> None:
    now = datetime.now(UTC)
    assert host_status(now - timedelta(seconds=15), 10, now) == HostStatus.up
    assert host_status(now - timedelta(seconds=21), 10, now) == HostStatus.stale
    assert host_status(now - timedelta(seconds=51), 10, now) == HostStatus.down


def test_sentiment_turns_unhealthy_when_a_host_is_down(seeded: Live) -> None:
    storage = seeded.server.ctx.storage
    state: HostState | None = storage.cache.get("db-1")
    assert state is not None
    state.last_seen = datetime.now(UTC) - timedelta(minutes=5)
    body = seeded.reader().get("/api/hosts/sentiment/overall").json()
    assert body["status"] == "unhealthy" and body["hosts"]["down"] == 1
    hosts = {h["host"]: h["status"] for h in seeded.reader().get("/api/hosts").json()}
    assert hosts == {"db-1": "down", "web-1": "up"}


def test_metrics_list(seeded: Live) -> None:
    body = seeded.reader().get("/api/history/metrics").json()
    assert "cpu.percent" in body and "load.1m" in body


def test_fleet_carries_recent_cpu_and_the_server_thresholds(seeded: Live) -> None:
    reader = seeded.reader()
    # the batch arrived as one commit: its newest report counts; then two more, in order
    agent = seeded.agent("web-1")
    for cpu in (70.0, 80.0):
        agent.post("/api/metrics/report", json=make_report("web-1", cpu=cpu))
    web = next(h for h in reader.get("/api/hosts").json() if h["host"] == "web-1")
    assert web["cpu_recent"][-3:] == [59.0, 70.0, 80.0]
    body = reader.get("/api/hosts/sentiment/overall").json()
    assert body["thresholds"] == {"cpu": 90.0, "memory": 85.0, "disk": 90.0}
