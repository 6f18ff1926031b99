"""Pilot tests against a real local server with seeded data, including one that goes away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from textual.pilot import Pilot

from statusdash.client import Credentials
from statusdash.tui.app import StatusdashApp
from statusdash.tui.model import ConnState, SortKey
from statusdash.tui.screens.fleet import FleetScreen
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.source import ApiSource
from statusdash.tui.widgets.chart import Chart
from statusdash.tui.widgets.fleet_table import FleetTable
from tests.conftest import Live, make_report
from tests.tui.helpers import shown, wait_for

HOSTS = {"alpha": 12.0, "bravo": 95.0, "charlie": 40.0, "delta-db": 70.0}


def seed(live: Live, history: int = 12) -> None:
    """Every host reports ``history`` times over the last hour, the last one now."""
    now = datetime.now(UTC)
    for host, cpu in HOSTS.items():
        with live.agent(host) as agent:
            reports = [
                make_report(
                    host, at=now - timedelta(minutes=5 * k), cpu=cpu - k % 3, interval_s=60.0
                )
                for k in range(history - 1, -1, -1)
            ]
            r = agent.post("/api/metrics/batch", json={"reports": reports})
            assert r.status_code == 200, r.text


def source_for(live: Live) -> ApiSource:
    return ApiSource(live.url, credentials=Credentials(token=live.token()), timeout=2.0)


def table(app: StatusdashApp) -> FleetTable:
    return app.screen.query_one(FleetTable)


async def first_data(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, StatusdashApp)
    await wait_for(pilot, lambda: len(app.model.rows) == len(HOSTS), what="first data")


async def test_fleet_host_and_back_against_a_real_server(live_server: Live) -> None:
    seed(live_server)
    source = source_for(live_server)
    app = StatusdashApp(source, poll_interval=0.2, stream=True)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await first_data(pilot)
            assert app.model.link.state(app.now()) in (ConnState.polling, ConnState.live)
            text = await shown(pilot)
            assert "4 hosts" in text and "bravo" in text and "95%!" in text  # over 90: marked
            # Sort: cpu, largest first.
            await pilot.press("s")  # host -> cpu
            assert app.model.sort_key is SortKey.cpu
            assert table(app).rows_shown == ["bravo", "delta-db", "charlie", "alpha"]
            # Filter.
            await pilot.press("slash", *"ar", "enter")
            assert table(app).rows_shown == ["charlie"]
            await pilot.press("escape")
            assert len(table(app).rows_shown) == 4
            assert table(app).selected == "charlie"  # the cursor stays on the host it was on
            # Open the first host by CPU.
            await pilot.press("home", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
            screen = app.screen
            assert isinstance(screen, HostScreen) and screen.host == "bravo"
            await wait_for(
                pilot, lambda: all(c.has_class("loaded") for c in screen.query(Chart)), what="h"
            )
            await wait_for(pilot, lambda: screen.detail is not None, what="detail")
            text = await shown(pilot)
            assert "Debian GNU/Linux 12" in text and "4 cores" in text and "ext4" in text
            assert "max 95%" in text  # the CPU chart's range covers the seeded history
            # Change the range to 15 minutes: fewer reports fall inside.
            await pilot.press("1")
            await wait_for(
                pilot, lambda: all(c.has_class("loaded") for c in screen.query(Chart)), what="r"
            )
            assert "[15m]" in await shown(pilot)
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
            assert table(app).selected == "bravo"
    finally:
        source.close()


async def test_server_goes_away_and_comes_back(live_server: Live) -> None:
    seed(live_server, history=2)
    source = source_for(live_server)
    app = StatusdashApp(source, poll_interval=0.2, stream=True)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await first_data(pilot)
            live_server.server.stop()
            await wait_for(pilot, lambda: app.model.link.failures >= 1, what="a failure")
            assert app.is_running
            assert app.model.link.state(app.now()) is ConnState.reconnecting
            assert len(app.model.rows) == len(HOSTS)  # the last data stays on screen
            text = await shown(pilot)
            assert "reconnecting · data" in text and "◐ alpha" in text
            live_server.server.start()
            # Backoff after one or two failures is at most a second or two.
            await wait_for(pilot, lambda: app.model.link.failures == 0, 15, what="recovery")
            assert app.model.link.state(app.now()) in (ConnState.polling, ConnState.live)
            text = await shown(pilot)
            assert "● alpha" in text and "reconnecting" not in text
    finally:
        source.close()
