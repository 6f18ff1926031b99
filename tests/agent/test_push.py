"""Delivery against a real local HTTP server with scripted answers."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from statusdash.agent.config import AgentConfig
from statusdash.agent.monitor import EventQueue, to_event
from statusdash.agent.push import Sender
from statusdash.agent.spool import Spool
from statusdash.backoff import Backoff
from tests.agent.standin import StandIn
from tests.conftest import free_port


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as s:
        yield s


def config(url: str, tmp_path: Path, **over: object) -> AgentConfig:
    base: dict[str, object] = {
        "server_url": url,
        "host_id": "web-1",
        "api_key": "k-123",
        "spool_dir": tmp_path / "spool",
        "interval_s": 1.0,
    }
    base.update(over)
    return AgentConfig(**base)  # type: ignore[arg-type]


def fill(spool: Spool, n: int, start: int = 0) -> list[str]:
    ids = [f"r-{i:03d}" for i in range(start, start + n)]
    for rid in ids:
        spool.append(json.dumps({"report_id": rid, "host": "web-1"}).encode(), time.time())
    return ids


def test_single_then_batch_over_one_kept_alive_connection(standin: StandIn, tmp_path: Path) -> None:
    sender = Sender(config(standin.url, tmp_path))
    with Spool(tmp_path / "spool") as spool:
        first = fill(spool, 1)
        assert sender.deliver(spool).delivered == 1
        rest = fill(spool, 5, start=1)
        result = sender.deliver(spool)
        assert result.ok and result.delivered == 5 and spool.pending == 0
    sender.close()
    assert [p[0] for p in standin.posts] == ["/api/metrics/report", "/api/metrics/batch"]
    assert standin.accepted == first + rest
    assert standin.connections == 1
    headers = standin.posts[0][1]
    assert headers["X-API-Key"] == "k-123"
    assert headers["User-Agent"].startswith("statusdash-agent/")


def test_batches_are_bounded_and_oldest_first(standin: StandIn, tmp_path: Path) -> None:
    sender = Sender(config(standin.url, tmp_path, batch_max_reports=4))
    with Spool(tmp_path / "spool") as spool:
        ids = fill(spool, 10)
        assert sender.deliver(spool).delivered == 10
    assert [len(p[2]) for p in standin.posts] == [4, 4, 2]
    assert standin.accepted == ids


def test_too_large_batch_is_halved(standin: StandIn, tmp_path: Path) -> None:
    standin.script = [413]
    sender = Sender(config(standin.url, tmp_path, batch_max_reports=8))
    with Spool(tmp_path / "spool") as spool:
        ids = fill(spool, 8)
        assert sender.deliver(spool).delivered == 8
    assert [len(p[2]) for p in standin.posts] == [8, 4, 4]
    assert standin.accepted == ids


def test_invalid_report_is_isolated_and_set_aside(standin: StandIn, tmp_path: Path) -> None:
    standin.script = [422, 200, 422]  # the batch, then r-000 ok, then r-001 refused alone
    sender = Sender(config(standin.url, tmp_path))
    with Spool(tmp_path / "spool") as spool:
        ids = fill(spool, 4)
        result = sender.deliver(spool)
        assert result.ok and spool.pending == 0 and spool.rejected_total == 1
    assert standin.accepted == [ids[0], ids[2], ids[3]]
    assert len(list((tmp_path / "spool" / "rejected").iterdir())) == 1


def test_server_refusing_everything_keeps_reports_spooled(standin: StandIn, tmp_path: Path) -> None:
    standin.script = [422] * 20
    sender = Sender(config(standin.url, tmp_path))
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 10)
        result = sender.deliver(spool)
        assert not result.ok and "refuses every report" in (result.error or "")
        assert spool.rejected_total == 3 and spool.pending == 7


def test_bad_credentials_stop_the_pass_and_keep_everything(
    standin: StandIn, tmp_path: Path
) -> None:
    standin.script = [401]
    sender = Sender(config(standin.url, tmp_path))
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 3)
        result = sender.deliver(spool)
        assert spool.pending == 3
    assert result.error is not None
    assert "refused our credentials (API key): scripted 401" in result.error


def test_host_mismatch_is_explained(standin: StandIn, tmp_path: Path) -> None:
    standin.script = [403]
    sender = Sender(config(standin.url, tmp_path))
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 1)
        result = sender.deliver(spool)
    assert "reports for host 'web-1'" in (result.error or "")


def test_server_down_is_a_plain_message(tmp_path: Path) -> None:
    sender = Sender(config(f"http://127.0.0.1:{free_port()}", tmp_path))
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 2)
        result = sender.deliver(spool)
        assert spool.pending == 2
    assert "connection refused" in (result.error or "")


def test_deadline_stops_between_batches(standin: StandIn, tmp_path: Path) -> None:
    sender = Sender(config(standin.url, tmp_path, batch_max_reports=2))
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 6)
        result = sender.deliver(spool, deadline=0.0)  # already passed: one batch, then stop
        assert result.ok and result.delivered == 2 and spool.pending == 4
        stopped = sender.deliver(spool, stop=lambda: True)
        assert stopped.delivered == 2 and spool.pending == 2


def test_backoff_grows_to_its_cap_and_resets() -> None:
    b = Backoff(1.0, 30.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    assert 0.5 <= delays[0] <= 1.0
    assert 2.0 <= delays[2] <= 4.0
    assert all(15.0 <= d <= 30.0 for d in delays[5:])
    b.reset()
    assert b.next_delay() <= 1.0


def test_report_files_removed_by_an_operator_are_skipped(standin: StandIn, tmp_path: Path) -> None:
    sender = Sender(config(standin.url, tmp_path))
    with Spool(tmp_path / "spool") as spool:
        ids = fill(spool, 4)
        (tmp_path / "spool" / spool.entries()[2].name).unlink()
        result = sender.deliver(spool)
        assert result.ok and spool.pending == 0
    assert standin.accepted == [ids[0], ids[1], ids[3]]


def test_a_200_that_is_not_an_acknowledgement_keeps_the_reports(
    standin: StandIn, tmp_path: Path
) -> None:
    standin.html = True
    sender = Sender(config(standin.url, tmp_path))
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 3)
        result = sender.deliver(spool)
        assert spool.pending == 3
    assert "without an acknowledgement" in (result.error or "")


def _events(n: int, status: str = "unhealthy") -> EventQueue:
    q = EventQueue()
    for i in range(n):
        q.add(to_event({
            "name": f"svc-{i}", "kind": "tcp", "status": status, "detail": "refused",
            "checked_at": "2026-11-27T10:00:00+00:00", "latency_ms": None,
        }))  # fmt: skip
    return q


def test_events_follow_reports_on_the_same_connection_in_bounded_posts(
    standin: StandIn, tmp_path: Path
) -> None:
    sender = Sender(config(standin.url, tmp_path))
    events = _events(300)
    with Spool(tmp_path / "spool") as spool:
        fill(spool, 2)
        assert sender.deliver(spool).delivered == 2
        result = sender.send_events(events)
    sender.close()
    assert result.ok and result.delivered == 300 and not events
    assert [p[0] for p in standin.posts] == ["/api/metrics/batch", "/api/events", "/api/events"]
    assert [e["payload"]["serviceName"] for e in standin.events] == [
        f"svc-{i}" for i in range(300)
    ]  # oldest first, 256 then 44
    assert standin.connections == 1


def test_events_wait_on_failures_and_go_when_they_can(standin: StandIn, tmp_path: Path) -> None:
    sender = Sender(config(standin.url, tmp_path))
    events = _events(3)
    standin.events_script = [503, 401]
    first = sender.send_events(events)
    assert not first.ok and "HTTP 503" in str(first.error) and len(events) == 3
    second = sender.send_events(events)
    assert "refused our credentials" in str(second.error) and len(events) == 3
    assert sender.send_events(events).delivered == 3 and not events
    sender.close()
    assert len(standin.events) == 3


def test_events_the_server_cannot_take_are_dropped_with_a_warning(
    standin: StandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sender = Sender(config(standin.url, tmp_path))
    events = _events(2)
    standin.events_script = [404]  # a server without /api/events
    result = sender.send_events(events)
    sender.close()
    assert result.ok and result.delivered == 0 and not events
    assert "refused 2 service event(s) (HTTP 404: scripted 404); dropped them" in caplog.text


def test_events_to_a_server_that_is_down_are_kept(tmp_path: Path) -> None:
    sender = Sender(config(f"http://127.0.0.1:{free_port()}", tmp_path))
    events = _events(2)
    result = sender.send_events(events)
    sender.close()
    assert not result.ok and "connection refused" in str(result.error) and len(events) == 2
