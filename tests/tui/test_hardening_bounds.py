"""Issue 10, item 3: the TUI's fleet and host screens render values at the wire's bounds."""

from __future__ import annotations

from statusdash.client import Credentials
from statusdash.tui.app import StatusdashApp
from statusdash.tui.screens.fleet import FleetScreen
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.source import ApiSource
from statusdash.tui.widgets.chart import Chart
from tests.cli.test_hardening_bounds import seed_at_bounds
from tests.conftest import Live
from tests.tui.helpers import shown, wait_for


async def test_fleet_and_host_screens_render_a_host_at_the_bounds(live_server: Live) -> None:
    seed_at_bounds(live_server)
    source = ApiSource(live_server.url, credentials=Credentials(token=live_server.token()))
    app = StatusdashApp(source, poll_interval=0.2, stream=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: len(app.model.rows) == 1, what="first data")
        text = await shown(pilot)
        assert "huge" in text and "100%" in text
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen), what="host screen")
        await wait_for(
            pilot,
            lambda: all(c.has_class("loaded") for c in app.screen.query(Chart)),
            what="charts",
        )
        assert "huge" in await shown(pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen), what="fleet")
    assert app.return_code in (None, 0)
