"""The TUI follows the real server's ``WS /api/stream``: rows change without a poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from statusdash.client import Credentials
from statusdash.server.app import create_app
from statusdash.settings import Settings
from statusdash.tui.app import StatusdashApp
from statusdash.tui.model import ConnState
from statusdash.tui.source import ApiSource
from tests.conftest import ADMIN_PASSWORD, make_report, make_settings
from tests.tui.helpers import shown, wait_for


@pytest.fixture
def streaming_server(tmp_path: Path) -> Iterator[tuple[Settings, str]]:
    """A real server with alerting and the stream installed, on a loopback port."""
    settings = make_settings(tmp_path / "data")
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=settings.status_port,
        log_level="warning",
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield settings, f"http://127.0.0.1:{settings.status_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _post(url: str, key: str, report: dict[str, object]) -> None:
    r = httpx.post(f"{url}/api/metrics/report", json=report, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text


async def test_rows_follow_the_stream(streaming_server: tuple[Settings, str]) -> None:
    from statusdash.server import keys

    settings, url = streaming_server
    key = keys.issue(settings.db_path, "web-1").key
    _post(url, key, make_report("web-1", cpu=10.0))
    token = httpx.post(
        f"{url}/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
    ).json()["access_token"]
    source = ApiSource(url, credentials=Credentials(token=token), timeout=2.0)
    app = StatusdashApp(source, poll_interval=0.2, live_poll_interval=3600.0, stream=True)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.model.link.streaming, what="stream open")
            await wait_for(pilot, lambda: "web-1" in app.model.rows, what="first poll")
            await pilot.pause(0.5)  # any poll scheduled before the stream opened has run
            polls = app.polls
            _post(url, key, make_report("web-1", cpu=33.0))
            await wait_for(
                pilot,
                lambda: app.model.rows["web-1"].summary.cpu_percent == 33.0,
                what="streamed row",
            )
            assert app.polls == polls  # it came over the stream, not from a poll
            assert app.model.link.state(app.now()) is ConnState.live
            assert "live ●" in await shown(pilot)
            assert list(app.model.rows["web-1"].cpu)[-2:] == [10.0, 33.0]  # the sparkline
    finally:
        source.close()
