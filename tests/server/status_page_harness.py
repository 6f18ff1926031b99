"""The status page's live fixture: a real server with alerting (fake clock, fast rules), the
page on, a config file, and the helpers that put real reports and service events into it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from statusdash.schema import HostStatus
from statusdash.server.cache import host_status
from tests.conftest import Live, RunningServer, make_report, make_settings
from tests.server.harness import FAST_RULES, AlertingServer, FakeClock, Harness, wait_for

PAGE_CONFIG = """
title = "Example <Corp> & Co status"

[[services]]
name = "nginx"
label = "Website"

[[services]]
name = "postgres"
label = "Database"

[[groups]]
name = "Web"
hosts = ["web-*"]

[[groups]]
name = "Databases"
hosts = ["db-*"]
"""
PUBLIC_RULES = FAST_RULES + "[rules.service]\npublic = true\n"
SECRET_ERROR = "connection refused by 10.20.30.40:5432"  # an error text with an address in it
SECRET_CPU = 97.25  # a metric value
HOSTS = ("web-1", "web-2", "db-1")

StartPage = Callable[..., Harness]


@pytest.fixture
def status_page(tmp_path: Path) -> Iterator[StartPage]:
    """``status_page(**settings)``: a live server with STATUS_PAGE on and ``PAGE_CONFIG``."""
    started: list[Harness] = []

    def start(config: str | None = PAGE_CONFIG, **over: Any) -> Harness:
        rules = tmp_path / "rules.toml"
        rules.write_text(PUBLIC_RULES)
        page_config = None
        if config is not None:
            page_config = tmp_path / "status-page.toml"
            page_config.write_text(config)
        base: dict[str, Any] = {
            "status_page": True,
            "status_page_config": page_config,
            "status_page_state_max_age_s": 0.0,
        }
        settings = make_settings(tmp_path / "data", **(base | over))
        h = Harness(Live(RunningServer(settings)), FakeClock(), rules)
        h.live.server = AlertingServer(settings, h.config).start()
        started.append(h)
        return h

    yield start
    for h in started:
        h.server.stop()


def event(name: str, healthy: bool, error: str = SECRET_ERROR) -> dict[str, Any]:
    if healthy:
        payload = {"serviceName": name, "checkedAt": "2026-11-27T10:00:00Z", "metrics": {"ms": 7}}
        return {"type": "SYSTEM_SERVICE_HEALTHY", "payload": payload}
    payload = {"serviceName": name, "checkedAt": "2026-11-27T10:00:05Z", "errorMessage": error}
    return {"type": "SYSTEM_SERVICE_UNHEALTHY", "payload": payload}


def page_json(h: Harness) -> dict[str, Any]:
    r = httpx.get(f"{h.live.url}/status.json", timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def yesterday_start() -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1)


def seed(h: Harness) -> None:
    """The scene the page tests read, through the real API:

    db-1 reported every hour of yesterday and reports now (CPU high: an alert that is not
    public); web-1 reports now; web-2 reported once with a 1 s interval and went silent (down);
    nginx on web-1 is healthy, postgres on db-1 unhealthy (a public ``service`` alert).
    """
    db = h.live.agent("db-1")
    start = yesterday_start()
    batch = [make_report("db-1", at=start + timedelta(hours=i, minutes=5)) for i in range(24)]
    for report in batch:
        assert db.post("/api/metrics/report", json=report).status_code == 200
    now_report = make_report("db-1", cpu=SECRET_CPU)
    assert db.post("/api/metrics/report", json=now_report).status_code == 200
    web1, web2 = h.live.agent("web-1"), h.live.agent("web-2")
    assert web1.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
    silent = make_report("web-2", interval_s=1.0)
    assert web2.post("/api/metrics/report", json=silent).status_code == 200
    assert web1.post("/api/events", json=event("nginx", True)).status_code == 200
    assert db.post("/api/events", json=event("postgres", False)).status_code == 200
    ctx = h.server.ctx
    ctx.jobs.scheduler.run_now("rollup")
    ctx.jobs.scheduler.run_now("status_page")

    def settled() -> bool:
        web2 = ctx.storage.cache.get("web-2")
        assert web2 is not None
        down = host_status(web2.last_seen, web2.interval_s, h.clock()) == HostStatus.down
        return down and bool(page_json(h)["incidents"])

    wait_for(settled, timeout=30, what="web-2 down and the postgres incident open")
