"""The agent's side of services.yaml: schedule, events on change plus a heartbeat, the pending
queue, and checks in worker threads that never hold up the loop."""

from __future__ import annotations

import json
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from statusdash.agent.checks.config import ServicesConfig, parse_services
from statusdash.agent.checks.run import CheckResult
from statusdash.agent.monitor import (
    ChangeTracker,
    CheckSchedule,
    EventQueue,
    ServiceMonitor,
    to_event,
)
from statusdash.server.health_events import ServicePayload, parse_events
from statusdash.wire import ServiceCheckResult


def _cfg() -> ServicesConfig:
    return parse_services(
        {
            "heartbeat": 60,
            "interval": 30,
            "services": [
                {"name": "web", "tcp": "h:1", "interval": 10},
                {"name": "pg", "tcp": "h:2"},
            ],
        }
    )


def _r(name: str, status: str, detail: str = "") -> CheckResult:
    return {
        "name": name,
        "kind": "tcp",
        "status": status,
        "checked_at": "2026-11-27T10:00:00+00:00",
        "latency_ms": 1.5,
        "detail": detail,
    }


def test_each_check_runs_on_its_own_interval() -> None:
    sched = CheckSchedule(_cfg())
    assert sched.next_due() == 0
    assert sched.due(0) == ["web", "pg"]
    assert sched.due(5) == [] and sched.next_due() == 10
    assert sched.due(10) == ["web"]
    assert sched.due(30) == ["web", "pg"]


def test_events_on_change_and_heartbeat_not_every_check() -> None:
    tracker = ChangeTracker(_cfg())

    def names(results: list[CheckResult], now: float) -> list[str]:
        events = [tracker.observe(r, now) for r in results]
        return [e["payload"]["serviceName"] for e in events if e is not None]

    assert names([_r("web", "healthy"), _r("pg", "healthy")], 0) == ["web", "pg"]
    assert names([_r("web", "healthy"), _r("pg", "healthy")], 10) == []
    down = tracker.observe(_r("web", "unhealthy", "refused"), 20)
    assert down is not None and down["type"] == "SYSTEM_SERVICE_UNHEALTHY"
    assert down["payload"]["errorMessage"] == "refused"
    assert down["payload"]["expectedWithinS"] == 150.0  # 2.5 heartbeats
    assert names([_r("web", "unhealthy", "refused")], 40) == []
    assert names([_r("web", "unhealthy", "timed out")], 41) == ["web"]  # a new error
    assert names([_r("web", "unhealthy", "timed out"), _r("pg", "healthy")], 61) == ["pg"]
    assert names([_r("web", "unhealthy", "timed out"), _r("pg", "healthy")], 101) == ["web"]


def test_events_are_what_the_server_accepts() -> None:
    events = [to_event(_r("web", "healthy", "HTTP 200")), to_event(_r("pg", "unknown", "x"), 90)]
    parsed = parse_events(json.dumps({"events": events}).encode())
    assert [e.type for e in parsed] == ["SYSTEM_SERVICE_HEALTHY", "SYSTEM_SERVICE_UNHEALTHY"]
    pg = parsed[1].payload
    assert isinstance(pg, ServicePayload)
    assert (pg.service_name, pg.error_message, pg.expected_within_s) == ("pg", "x", 90)
    assert pg.metrics["status"] == "unknown" and pg.metrics["latencyMs"] == 1.5
    assert pg.checked_at is not None and pg.checked_at.isoformat() == _r("x", "ok")["checked_at"]


def _ev(name: str, status: str, error: str = "", at: int = 0) -> dict[str, Any]:
    r = _r(name, status, error)
    r["checked_at"] = f"2026-11-27T10:00:{at:02d}+00:00"
    return to_event(r)


def _decoded(q: EventQueue) -> list[tuple[str, str, str]]:
    out = []
    for raw in q.batch(10_000, 10**9):
        e = json.loads(raw)
        out.append((e["payload"]["serviceName"], e["type"][15:], e["payload"]["checkedAt"][17:19]))
    return out


def test_the_queue_keeps_changes_in_order_and_folds_repeats() -> None:
    q = EventQueue()
    q.add(_ev("web", "healthy", at=1))
    q.add(_ev("pg", "healthy", at=1))
    q.add(_ev("web", "healthy", at=2))  # a heartbeat: replaces the one waiting
    q.add(_ev("web", "unhealthy", "refused", at=3))
    q.add(_ev("web", "healthy", at=4))  # down and up while the server was away: both kept
    q.add(_ev("web", "healthy", at=5))
    assert _decoded(q) == [
        ("web", "HEALTHY", "02"),
        ("pg", "HEALTHY", "01"),
        ("web", "UNHEALTHY", "03"),
        ("web", "HEALTHY", "05"),
    ]
    assert len(q.batch(2, 10**9)) == 2 and len(q.batch(100, 1)) == 1  # at least one
    q.ack(3)
    assert _decoded(q) == [("web", "HEALTHY", "05")]


def test_the_queue_is_bounded_and_counts_what_it_drops(caplog: pytest.LogCaptureFixture) -> None:
    q = EventQueue(limit=3)
    for i in range(5):
        q.add(_ev("web", "unhealthy" if i % 2 else "healthy", str(i), at=i))
    assert len(q) == 3 and q.dropped == 2
    assert [t[2] for t in _decoded(q)] == ["02", "03", "04"]  # the oldest went
    assert "dropped the oldest (1 dropped since start)" in caplog.text


@pytest.fixture
def slow_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``systemctl`` that takes 1.5 s to answer."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text("#!/bin/sh\nsleep 1.5\necho active\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_a_slow_check_never_holds_up_the_loop(slow_systemctl: None) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        cfg = parse_services(
            {
                "heartbeat": 60,
                "services": [
                    {"name": "unit", "systemd": "slow.service", "interval": 0.2, "timeout": 5},
                    {"name": "port", "tcp": f"127.0.0.1:{port}", "interval": 0.2},
                ],
            }
        )
        woken = threading.Event()
        monitor = ServiceMonitor(cfg, wake=woken.set)
        try:
            t0 = time.monotonic()
            assert monitor.start_due(t0) == 2
            assert time.monotonic() - t0 < 0.1  # handed over, not run here
            assert woken.wait(5)  # the TCP check's first result wakes the loop
            monitor.update(time.monotonic())
            assert [r["name"] for r in monitor.results()] == ["port"]  # the slow one still runs
            time.sleep(0.25)
            assert monitor.start_due(time.monotonic()) == 1  # not a second run of the slow one
            assert monitor.skipped == 1
            assert monitor.idle(5)
            monitor.update(time.monotonic())
        finally:
            monitor.close()
    results = monitor.results()
    assert [(r["name"], r["status"]) for r in results] == [("unit", "healthy"), ("port", "healthy")]
    for r in results:
        msgspec.convert(r, ServiceCheckResult)
    assert len(monitor.events) == 2  # one first status each; the repeat raised none
