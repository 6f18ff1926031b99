"""Issue 13's query API over a real server: ``GET /api/hosts/{id}/series``, history with a
selector (one series, several, capped, none), the 4xx bodies of bad selectors, the catalogue
listing, and who may read (mTLS: a viewer certificate reads, an agent's is refused)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from statusdash.schema import HistorySeries, HistorySet, LabelledHistory, SeriesInfo
from statusdash.selector import MAX_TEXT
from tests.conftest import Live, RunningServer, TlsLive, make_report, make_settings

N = 30  # reports, one a minute over the last half hour
MOUNTS = {"/": 40.0, "/data": 60.0, "/var/log": 20.0}
OLD = 10  # "/old" is in the first OLD reports only: a series that stopped 20 minutes ago


def _mount_value(mount: str, i: int) -> float:
    return MOUNTS[mount] + i * 0.5 if mount in MOUNTS else 90.0


def _disks(i: int) -> list[dict[str, Any]]:
    mounts = [*MOUNTS, "/old"] if i < OLD else list(MOUNTS)
    return [
        {
            "mount": m,
            "fstype": "ext4",
            "total": 100 << 30,
            "used": int(_mount_value(m, i) / 100 * (100 << 30)),
            "percent": _mount_value(m, i),
        }
        for m in mounts
    ]


def _reports(host: str, now: datetime) -> list[dict[str, Any]]:
    return [
        make_report(
            host,
            at=now - timedelta(minutes=N - i),
            interval_s=60,
            cpu=float(i),
            disks=_disks(i),
        )
        for i in range(N)
    ]


def _seed(live: Live) -> Live:
    now = datetime.now(UTC).replace(microsecond=0)
    with live.agent("web-1") as agent:
        r = agent.post("/api/metrics/batch", json={"reports": _reports("web-1", now)})
        assert r.status_code == 200, r.text
    return live


@pytest.fixture
def seeded(live_server: Live) -> Live:
    return _seed(live_server)


def _history(live: Live, metric: str, **params: Any) -> Any:
    with live.reader() as r:
        query = {"metric": metric, "since": "40m", "points": 2000, **params}
        return r.get("/api/hosts/web-1/history", params=query)


def test_series_lists_every_series_of_the_host(seeded: Live) -> None:
    with seeded.reader() as r:
        body = r.get("/api/hosts/web-1/series").json()
    rows = [SeriesInfo.model_validate(s) for s in body]
    mounts = {s.labels["mount"]: s for s in rows if s.metric == "disk.mount.percent"}
    assert sorted(mounts) == ["/", "/data", "/old", "/var/log"]
    assert all(s.unit == "%" for s in mounts.values())
    assert mounts["/old"].last < mounts["/"].last  # it stopped: its last sample stays old
    assert mounts["/"].last - mounts["/"].first == timedelta(minutes=N - 1)
    cores = sorted(s.labels["core"] for s in rows if s.metric == "cpu.core.percent")
    assert cores == ["0", "1", "2", "3"]


def test_series_takes_a_selector(seeded: Live) -> None:
    with seeded.reader() as r:
        got = r.get(
            "/api/hosts/web-1/series", params={"metric": 'disk.mount.percent{mount=~"/d.*"}'}
        )
    assert got.status_code == 200, got.text
    assert [(s["metric"], s["labels"]) for s in got.json()] == [
        ("disk.mount.percent", {"mount": "/data"})
    ]


def test_a_selector_picks_exactly_its_series(seeded: Live) -> None:
    r = _history(seeded, 'disk.mount.percent{mount="/data"}')
    assert r.status_code == 200, r.text
    one = LabelledHistory.model_validate(r.json())
    assert one.labels == {"mount": "/data"} and one.metric == "disk.mount.percent"
    assert [p.avg for p in one.points] == [_mount_value("/data", i) for i in range(N)]
    assert all(p.count == 1 for p in one.points)


def test_not_equal_and_regex_matchers(seeded: Live) -> None:
    several = HistorySet.model_validate(
        _history(seeded, 'disk.mount.percent{mount!="/", mount!="/old"}').json()
    )
    assert [s.labels["mount"] for s in several.series] == ["/data", "/var/log"]
    assert several.total == 2 and not several.truncated
    for s in several.series:
        m = s.labels["mount"]
        assert [p.avg for p in s.points] == [_mount_value(m, i) for i in range(N)]

    one = _history(seeded, 'disk.mount.percent{mount!~"/(data|var/.*|old)"}').json()
    assert one["labels"] == {"mount": "/"} and len(one["points"]) == N
    # anchored: "/d" alone matches no mount
    assert _history(seeded, 'disk.mount.percent{mount=~"/d"}').status_code == 404


def test_a_bare_labelled_metric_answers_every_series_with_data_in_the_range(seeded: Live) -> None:
    every = HistorySet.model_validate(_history(seeded, "disk.mount.percent").json())
    assert [s.labels["mount"] for s in every.series] == ["/", "/data", "/old", "/var/log"]
    old = next(s for s in every.series if s.labels["mount"] == "/old")
    assert len(old.points) == OLD  # stopped: no values made up after its last sample
    recent = HistorySet.model_validate(_history(seeded, "disk.mount.percent", since="15m").json())
    assert [s.labels["mount"] for s in recent.series] == ["/", "/data", "/var/log"]
    assert recent.total == 3 and recent.unit == "%"


def test_a_host_level_metric_answers_as_before(seeded: Live) -> None:
    for metric in ("cpu.percent", "cpu.percent{}"):
        body = _history(seeded, metric).json()
        assert "labels" not in body and "series" not in body
        series = HistorySeries.model_validate(body)
        assert series.metric == "cpu.percent"
        assert [p.avg for p in series.points] == [float(i) for i in range(N)]


def test_the_cap_truncates_and_counts(tmp_path: Path) -> None:
    server = RunningServer(make_settings(tmp_path / "data", history_max_series=2)).start()
    try:
        live = _seed(Live(server))
        capped = HistorySet.model_validate(_history(live, "disk.mount.percent").json())
    finally:
        server.stop()
    assert [s.labels["mount"] for s in capped.series] == ["/", "/data"]
    assert capped.total == 4 and capped.truncated


def test_nothing_matched_is_a_404_naming_the_hosts_values(seeded: Live) -> None:
    r = _history(seeded, 'disk.mount.percent{mount="/nope"}')
    assert r.status_code == 404
    detail = r.json()["detail"]
    assert "disk.mount.percent" in detail
    for mount in ('{mount="/"}', '{mount="/data"}', '{mount="/var/log"}'):
        assert mount in detail
    with seeded.reader() as rd:
        gone = rd.get("/api/hosts/nobody/series")
    assert gone.status_code == 404 and "nobody" in gone.json()["detail"]


@pytest.mark.parametrize(
    ("metric", "needle"),
    [
        ('disk.mount.percent{mount="/"', "column 29: expected ',' or '}'"),
        ('disk.mount.percent{device="sda"}', "no label 'device'; its labels: mount"),
        ('cpu.percent{core="0"}', "host-level series"),
        ("disk.bogus", "no metric 'disk.bogus'"),
        ('disk.mount.percent{mount=~"(x"}', "bad regex"),
        ('disk.mount.percent{mount=~"' + "a" * 257 + '"}', "at most 256"),
        ('disk.mount.percent{mount="' + "a" * 256 + '"}', "at most 255"),
        ('disk.mount.percent{mount=~"(a)\\\\1"}', "bad regex"),
    ],
)
def test_bad_selectors_are_422s_naming_the_fault(seeded: Live, metric: str, needle: str) -> None:
    for path in ("/api/hosts/web-1/history", "/api/hosts/web-1/series"):
        with seeded.reader() as r:
            got = r.get(path, params={"metric": metric})
        assert got.status_code == 422, got.text
        body = got.json()
        assert body["error"] == "validation_error" and needle in body["detail"]


def test_an_overlong_selector_is_refused_before_parsing(seeded: Live) -> None:
    got = _history(seeded, "m" * (MAX_TEXT + 1))
    assert got.status_code == 422 and got.json()["error"] == "validation_error"


def test_the_regex_cap_is_a_setting(tmp_path: Path) -> None:
    server = RunningServer(make_settings(tmp_path / "data", selector_max_regex=4)).start()
    try:
        live = _seed(Live(server))
        ok = _history(live, 'disk.mount.percent{mount=~"/d.*"}')
        long = _history(live, 'disk.mount.percent{mount=~"/da.*"}')
    finally:
        server.stop()
    assert ok.status_code == 200
    assert long.status_code == 422 and "at most 4" in long.json()["detail"]


def test_the_catalogue_lists_labels_units_and_descriptions(live_server: Live) -> None:
    with live_server.reader() as r:
        known = r.get("/api/history/metrics").json()
    assert known["disk.mount.percent"]["labels"] == ["mount"]
    assert known["disk.mount.percent"]["unit"] == "%"
    assert known["disk.mount.percent"]["description"]
    assert known["cpu.percent"] == {"unit": "%", "description": "CPU busy, %", "labels": []}


# --- who may read -------------------------------------------------------------------------------


def test_anonymous_readers_are_refused(seeded: Live) -> None:
    import httpx

    with httpx.Client(base_url=seeded.url, timeout=10) as anon:
        for path in ("/api/hosts/web-1/series", "/api/hosts/web-1/history"):
            got = anon.get(path, params={"metric": "disk.mount.percent"})
            assert got.status_code == 401 and got.json()["error"]
    with seeded.agent("web-1") as agent:  # an agent's API key reads nothing
        assert agent.get("/api/hosts/web-1/series").status_code == 403


@pytest.fixture
def tls_seeded(tls_server: TlsLive) -> Iterator[TlsLive]:
    now = datetime.now(UTC).replace(microsecond=0)
    with tls_server.client("web-1") as agent:
        r = agent.post("/api/metrics/batch", json={"reports": _reports("web-1", now)})
        assert r.status_code == 200, r.text
    yield tls_server


def test_over_mtls_a_viewer_reads_and_an_agent_is_refused(tls_seeded: TlsLive) -> None:
    params = {"metric": 'disk.mount.percent{mount="/data"}', "since": "40m"}
    with tls_seeded.client("viewer") as viewer:
        listed = viewer.get("/api/hosts/web-1/series")
        one = viewer.get("/api/hosts/web-1/history", params=params)
    assert listed.status_code == 200 and len(listed.json()) > 4
    assert one.status_code == 200 and one.json()["labels"] == {"mount": "/data"}
    with tls_seeded.client("web-1") as agent:
        for path in ("/api/hosts/web-1/series", "/api/hosts/web-1/history"):
            refused = agent.get(path, params=params)
            assert refused.status_code == 403, refused.text
            assert "may not read" in refused.json()["detail"]


def test_a_long_range_reads_a_coarse_tier_and_keeps_every_sample(seeded: Live) -> None:
    one = LabelledHistory.model_validate(
        _history(seeded, 'disk.mount.percent{mount="/data"}', since="2d", points=4).json()
    )
    assert one.tier == "1h" and one.bucket_s == 12 * 3600
    assert sum(p.count for p in one.points) == N
    values = [_mount_value("/data", i) for i in range(N)]
    assert min(p.min for p in one.points) == min(values)
    assert max(p.max for p in one.points) == max(values)
    mean = sum(p.avg * p.count for p in one.points) / N
    assert mean == pytest.approx(sum(values) / N)
