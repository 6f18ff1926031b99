"""Issue 11 item 4: every acknowledgement carries the host's high-water mark, and a restore of
an older backup is refilled by the agent's kept reports, live reports first, nothing older than
the mark sent again. Real server on loopback with mTLS, real SQLite, the agent's own push path
(``Sender`` over a ``Spool`` with its keep window)."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from statusdash.agent.config import AgentConfig
from statusdash.agent.push import REFILL, Sender
from statusdash.agent.spool import Spool
from statusdash.server.backup import backup_database, restore
from tests.conftest import Live, RunningServer, TlsLive, make_report, make_settings


def _post(client: httpx.Client, report: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/api/metrics/report", json=report)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def test_the_mark_is_what_the_server_held_before_the_request(live_server: Live) -> None:
    agent = live_server.agent("web-1")
    t0 = datetime.now(UTC).replace(microsecond=123456) - timedelta(minutes=10)
    assert _post(agent, make_report("web-1", at=t0))["high_water"] is None  # nothing yet
    assert _post(agent, make_report("web-1", at=t0 + timedelta(seconds=10)))["high_water"] == (
        _iso(t0)
    )
    # a late (older) report does not lower it; a replay reports what is held
    late = make_report("web-1", at=t0 - timedelta(seconds=30))
    assert _post(agent, late)["high_water"] == _iso(t0 + timedelta(seconds=10))
    again = _post(agent, late)
    assert again["duplicates"] == 1 and again["high_water"] == _iso(t0 + timedelta(seconds=10))
    batch = [make_report("web-1", at=t0 + timedelta(seconds=10 * i)) for i in (2, 3, 4)]
    r = agent.post("/api/metrics/batch", json={"reports": batch})
    assert r.json() == {
        "accepted": 3,
        "duplicates": 0,
        "high_water": _iso(t0 + timedelta(seconds=10)),
    }
    # per host: another host's mark is its own
    assert _post(live_server.agent("db-1"), make_report("db-1", at=t0))["high_water"] is None
    # after a restart the mark comes from the stored samples, not from the hosts row
    live_server.server.stop()
    live_server.server.start()
    fresh = make_report("web-1", at=t0 + timedelta(seconds=50))
    assert _post(live_server.agent("web-1"), fresh)["high_water"] == _iso(
        t0 + timedelta(seconds=40)
    )


def _stored(db: Path, host: str = "web-1") -> list[str]:
    with sqlite3.connect(db, timeout=10) as conn:
        rows = conn.execute(
            "SELECT s.report_id FROM samples s JOIN hosts h ON h.id = s.host_id WHERE h.name = ?",
            (host,),
        ).fetchall()
    return [str(uuid.UUID(bytes=bytes(r[0]))) for r in rows]


class Tap:
    """The sender's posts as sent (a spy on the real path: every request still goes out)."""

    def __init__(self, sender: Sender, before: Callable[[str, list[str]], None] | None = None):
        self.posts: list[tuple[str, list[str]]] = []
        self.refill: list[bool] = []  # sent as a refill (X-Statusdash-Refill)
        self._send = sender._send
        self._before = before
        sender._send = self  # type: ignore[method-assign]

    def __call__(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        data = json.loads(body)
        reports = data.get("reports", [data])
        ids = [r["report_id"] for r in reports]
        self.posts.append((path, ids))
        self.refill.append(headers == REFILL)
        if self._before is not None:
            self._before(path, ids)
        return self._send(path, body, headers)


def _agent_config(live: TlsLive, tmp_path: Path, **over: Any) -> AgentConfig:
    clients = live.vault / "clients"
    base: dict[str, Any] = {
        "server_url": live.url,
        "host_id": "web-1",
        "ca": live.vault / "ca" / "ca.crt",
        "cert": clients / "web-1.crt",
        "key": clients / "web-1.key",
        "spool_dir": tmp_path / "spool",
        "interval_s": 10.0,
    }
    base.update(over)
    return AgentConfig(**base)


def _spool(cfg: AgentConfig) -> Spool:
    return Spool(
        cfg.spool_dir, keep_max_bytes=cfg.keep_acked_max_bytes, keep_max_age_s=cfg.keep_acked_s
    )


def _spool_report(spool: Spool, at: datetime) -> str:
    report = make_report("web-1", at=at)
    spool.append(json.dumps(report).encode(), at.timestamp())
    return str(report["report_id"])


def test_a_restore_is_refilled_exactly_after_live_reports(
    tls_server: TlsLive, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _agent_config(tls_server, tmp_path, batch_max_reports=5)
    start = datetime.now(UTC) - timedelta(hours=1)
    at = iter(start + timedelta(seconds=10 * i) for i in range(1000))
    db = tls_server.settings.db_path
    with _spool(cfg) as spool:
        sender = Sender(cfg)
        before = [_spool_report(spool, next(at)) for _ in range(8)]
        assert sender.deliver(spool).delivered == 8
        backup = tmp_path / "backup.db"
        backup_database(db, backup)  # online, as the scheduled backups are
        lost = []
        for _ in range(12):  # one at a time, as live reports go
            lost.append(_spool_report(spool, next(at)))
            assert sender.deliver(spool).delivered == 1
        assert spool.pending == 0 and spool.keep.kept == 20
        sender.close()
        tls_server.server.stop()
        restore(backup, db, keep_previous=False)
        tls_server.server.start()
        assert sorted(_stored(db)) == sorted(before)  # the restore lost the 12

        live: list[str] = []

        def live_report_meanwhile(path: str, ids: list[str]) -> None:
            if path.endswith("/batch") and len(live) < 2:  # a report collected mid-refill
                live.append(_spool_report(spool, next(at)))

        sender = Sender(cfg)
        tap = Tap(sender, live_report_meanwhile)
        first = _spool_report(spool, next(at))
        with caplog.at_level(logging.WARNING, logger="statusdash.agent.spool"):
            result = sender.deliver(spool)
        sender.close()
    assert result.ok, result.error
    # the live report first; then the 12 lost, oldest first, in batches of 5, each batch
    # followed by the live report collected while it was sent
    assert tap.posts == [
        ("/api/metrics/report", [first]),
        ("/api/metrics/batch", lost[:5]),
        ("/api/metrics/report", [live[0]]),
        ("/api/metrics/batch", lost[5:10]),
        ("/api/metrics/report", [live[1]]),
        ("/api/metrics/batch", lost[10:]),
    ]
    assert tap.refill == [False, True, False, True, False, True]
    sent_again = {i for path, ids in tap.posts if path.endswith("/batch") for i in ids}
    assert not sent_again & set(before)  # nothing at or before the mark
    stored = _stored(db)
    assert len(stored) == len(set(stored))  # every report once
    assert set(stored) == {*before, *lost, first, *live}
    assert "sending 12 kept report(s) again" in caplog.text


def test_a_refill_cut_short_resumes_after_the_agent_restarts(
    tls_server: TlsLive, tmp_path: Path
) -> None:
    cfg = _agent_config(tls_server, tmp_path, batch_max_reports=4)
    start = datetime.now(UTC) - timedelta(hours=1)
    at = iter(start + timedelta(seconds=10 * i) for i in range(1000))
    db = tls_server.settings.db_path
    with _spool(cfg) as spool:
        sender = Sender(cfg)
        before = [_spool_report(spool, next(at)) for _ in range(3)]
        sender.deliver(spool)
        backup_database(db, tmp_path / "b.db")
        lost = [_spool_report(spool, next(at)) for _ in range(10)]
        sender.deliver(spool)
        sender.close()
    tls_server.server.stop()
    restore(tmp_path / "b.db", db, keep_previous=False)
    tls_server.server.start()
    with _spool(cfg) as spool:
        sender = Sender(cfg)
        live = _spool_report(spool, next(at))
        # one pass ends after the live report and one batch (its deadline has passed)
        sender.deliver(spool, deadline=0.0)
        sender.deliver(spool, deadline=0.0)
        assert spool.keep.resend_waiting == 10 - 4
        sender.close()
    with _spool(cfg) as spool:  # a new run of the agent: the queue to send again is on disk
        assert spool.keep.resend_waiting == 6
        sender = Sender(cfg)
        assert sender.deliver(spool).ok
        sender.close()
        assert spool.keep.resend_waiting == 0
    stored = _stored(db)
    assert len(stored) == len(set(stored)) and set(stored) == {*before, *lost, live}


def test_refills_past_the_limit_are_told_to_come_back(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", restore_refill_max_requests=1, restore_refill_retry_s=7
    )
    server = RunningServer(settings).start()
    try:
        live = Live(server)
        agent = live.agent("web-1")
        gate = server.ctx.storage.refill_gate
        gate.in_flight = 1  # one refill is being stored
        at = datetime.now(UTC) - timedelta(minutes=5)
        batch = [make_report("web-1", at=at + timedelta(seconds=10 * i)) for i in range(3)]
        refill = {"X-Statusdash-Refill": "1"}
        busy = agent.post("/api/metrics/batch", json={"reports": batch}, headers=refill)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "7"
        assert busy.json()["error"] == "refill_busy"
        assert "RESTORE_REFILL_MAX_REQUESTS" in busy.json()["detail"]
        # live reports and ordinary catch-up never wait for the gate
        assert _post(agent, make_report("web-1"))["accepted"] == 1
        assert agent.post("/api/metrics/batch", json={"reports": batch[:2]}).status_code == 200
        gate.in_flight = 0
        ok = agent.post("/api/metrics/batch", json={"reports": batch}, headers=refill)
        assert ok.json()["accepted"] == 1 and ok.json()["duplicates"] == 2
        assert gate.in_flight == 0 and gate.refused == 1
    finally:
        server.stop()
