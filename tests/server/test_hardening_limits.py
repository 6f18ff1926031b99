"""Issue 10, items 6 and 7: the per-host ingest limit, and the batch size cap (real server)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from statusdash import wire
from statusdash.settings import Settings
from tests.conftest import Live, RunningServer, make_report, make_settings


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Live]:
    """A server with the limits at their defaults (the shared fixture relaxes them)."""
    defaults = Settings.model_fields
    server = RunningServer(
        make_settings(
            tmp_path / "data",
            ingest_max_reports_per_interval=defaults["ingest_max_reports_per_interval"].default,
            ingest_min_interval_s=defaults["ingest_min_interval_s"].default,
            max_batch_bytes=defaults["max_batch_bytes"].default,
        )
    ).start()
    try:
        yield Live(server)
    finally:
        server.stop()


def stored(live: Live, host: str) -> int:
    with sqlite3.connect(live.settings.db_path) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM samples s JOIN hosts h ON h.id = s.host_id WHERE h.name = ?",
            (host,),
        ).fetchone()
    return int(n)


def test_the_defaults() -> None:
    s = Settings(_env_file=None)
    assert s.ingest_max_reports_per_interval == 3
    assert s.ingest_min_interval_s == 0.1
    assert s.max_batch_bytes == 4 * 1024 * 1024 == wire.MAX_BATCH_BYTES


def test_a_day_of_backlog_passes_and_its_replay_is_all_duplicates(limited: Live) -> None:
    agent = limited.agent("web-1")
    now = datetime.now(UTC)
    day = [
        make_report("web-1", at=now - timedelta(seconds=30 * k), interval_s=30.0)
        for k in range(2880, 0, -1)
    ]
    step = wire.MAX_BATCH_REPORTS
    batches = [day[i : i + step] for i in range(0, len(day), step)]
    for batch in batches:
        r = agent.post("/api/metrics/batch", json={"reports": batch}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": len(batch), "duplicates": 0, "high_water": ANY}
    for batch in batches:  # the spool sends it all again: every report a duplicate
        r = agent.post("/api/metrics/batch", json={"reports": batch}, timeout=60)
        assert r.json() == {"accepted": 0, "duplicates": len(batch), "high_water": ANY}
    assert stored(limited, "web-1") == len(day)


def test_a_flood_of_new_ids_for_one_moment_is_refused_counted_and_isolated(
    limited: Live,
) -> None:
    flood, other = limited.agent("web-1"), limited.agent("db-1")
    at = datetime.now(UTC)
    reports = [make_report("web-1", at=at + timedelta(milliseconds=k)) for k in range(100)]
    answers = [flood.post("/api/metrics/report", json=r) for r in reports]
    assert [a.status_code for a in answers] == [200] * 3 + [429] * 97
    refused = answers[3].json()
    assert (
        refused["error"] == "ingest_limit"
        and "INGEST_MAX_REPORTS_PER_INTERVAL" in refused["detail"]
    )
    # Replays of what was stored are duplicates, not refusals.
    assert flood.post("/api/metrics/report", json=reports[0]).json() == {
        "accepted": 0,
        "duplicates": 1,
        "high_water": ANY,
    }
    # A batch of new ids for the same moment is refused whole.
    more = [make_report("web-1", at=at) for _ in range(10)]
    assert flood.post("/api/metrics/batch", json={"reports": more}).status_code == 429
    # The next interval is open again, and another host never noticed.
    later = make_report("web-1", at=at + timedelta(seconds=10))
    assert flood.post("/api/metrics/report", json=later).status_code == 200
    for k in range(3):
        r = other.post("/api/metrics/report", json=make_report("db-1", at=at, cpu=float(k)))
        assert r.status_code == 200, r.text
    assert (stored(limited, "web-1"), stored(limited, "db-1")) == (4, 3)
    detail = limited.reader().get("/api/hosts/web-1").json()
    assert detail["ingest_refused"] == 97 + 10
    assert limited.reader().get("/api/hosts/db-1").json()["ingest_refused"] == 0


def test_a_report_cannot_shrink_its_own_window(limited: Live) -> None:
    """``interval_s`` is the agent's word: the window is at least INGEST_MIN_INTERVAL_S."""
    agent = limited.agent("web-1")
    at = datetime.now(UTC).replace(microsecond=0)
    codes = [
        agent.post(
            "/api/metrics/report",
            json=make_report("web-1", at=at + timedelta(microseconds=k), interval_s=1e-6),
        ).status_code
        for k in range(10)
    ]
    assert codes == [200] * 3 + [429] * 7


def test_windows_of_two_widths_are_counted_exactly(limited: Live) -> None:
    """The writer keeps each host's newest window count in memory; a width change drops it."""
    agent = limited.agent("web-1")
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)

    def send(offset_s: float, interval_s: float) -> int:
        at = base + timedelta(seconds=offset_s)
        r = make_report("web-1", at=at, interval_s=interval_s)
        return agent.post("/api/metrics/report", json=r).status_code

    # One 60 s window [base, base+60) holds rows sent under two widths.
    assert send(5, 60.0) == 200
    assert send(6, 10.0) == 200  # the 10 s window [base, base+10): its own count of 1
    assert send(7, 60.0) == 200  # the 60 s window now holds 3 rows
    assert send(8, 60.0) == 429  # a stale in-memory count (1 + 1) would have let it in
    assert send(9, 10.0) == 429  # the 10 s window [base, base+10) holds those 3 rows too
    assert send(11, 10.0) == 200  # the next 10 s window is open
    assert send(12, 10.0) == 200
    assert send(13, 10.0) == 200
    assert send(14, 10.0) == 429  # counted in memory: the host's newest window
    assert send(15, 60.0) == 429  # the 60 s window holds 6 rows by a query
    assert stored(limited, "web-1") == 6


def test_a_catch_up_batch_is_counted_against_every_window_it_spans(limited: Live) -> None:
    """Older windows are counted by one range query per batch; each count must stay exact."""
    agent = limited.agent("web-1")
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)

    def at(window: int, k: int) -> datetime:
        return base + timedelta(seconds=10 * window + k)

    def batch(reports: list[dict[str, Any]]) -> int:
        return agent.post("/api/metrics/batch", json={"reports": reports}).status_code

    two_each = [
        make_report("web-1", at=at(w, k), interval_s=10.0) for w in range(10) for k in (1, 2)
    ]
    assert batch(two_each) == 200
    assert batch([make_report("web-1", at=at(20, 1), interval_s=10.0)]) == 200  # newer: max_ts
    third = [make_report("web-1", at=at(w, 3), interval_s=10.0) for w in range(10)]
    assert batch(third) == 200  # 2 stored + 1 each: at the limit, not past it
    fourth = [make_report("web-1", at=at(w, 4), interval_s=10.0) for w in (11, 12, 5)]
    assert batch(fourth) == 429  # window 5 already holds 3
    assert batch(fourth[:2]) == 200
    assert stored(limited, "web-1") == 20 + 1 + 10 + 2


def test_the_limit_is_a_setting(tmp_path: Path) -> None:
    server = RunningServer(
        make_settings(tmp_path / "data", ingest_max_reports_per_interval=5)
    ).start()
    try:
        live = Live(server)
        at = datetime.now(UTC)
        batch = {"reports": [make_report("web-1", at=at) for _ in range(5)]}
        assert live.agent("web-1").post("/api/metrics/batch", json=batch).status_code == 200
        one = make_report("web-1", at=at)
        assert live.agent("web-1").post("/api/metrics/report", json=one).status_code == 429
    finally:
        server.stop()


def big_batch(n: int, at: datetime, **bad: Any) -> dict[str, Any]:
    reports = [make_report("web-1", at=at - timedelta(seconds=10 * (n - k))) for k in range(n)]
    for k, v in bad.items():
        reports[int(k.removeprefix("i"))]["cpu"]["percent"] = v
    return {"reports": reports}


def test_a_batch_past_max_batch_bytes_is_413_before_parsing(limited: Live) -> None:
    body = b'{"reports": [' + b" " * wire.MAX_BATCH_BYTES + b"]}"
    r = limited.agent("web-1").post(
        "/api/metrics/batch", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert str(wire.MAX_BATCH_BYTES) in r.json()["detail"]


def test_a_bad_batch_names_its_first_bad_report(limited: Live) -> None:
    batch = big_batch(wire.MAX_BATCH_REPORTS, datetime.now(UTC), i300=101.0, i400=-1.0)
    r = limited.agent("web-1").post("/api/metrics/batch", json=batch, timeout=60)
    assert r.status_code == 422
    body = r.json()
    assert body["report_index"] == 300
    assert body["fields"] == [
        {"field": "reports.300.cpu.percent", "problem": body["fields"][0]["problem"]}
    ]
    assert stored(limited, "web-1") == 0


def test_the_agent_batches_within_the_servers_cap() -> None:
    import dataclasses

    from statusdash.agent.config import AgentConfig

    (field,) = [f for f in dataclasses.fields(AgentConfig) if f.name == "batch_max_bytes"]
    # Entries up to the cap, plus a comma each and the wrapper, stay far under the server's cap.
    assert isinstance(field.default, int) and field.default <= wire.MAX_BATCH_BYTES // 2
