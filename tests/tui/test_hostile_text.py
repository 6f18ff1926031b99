"""Every TUI screen draws hostile agent text as visible escapes and literal markup (item 11).

What is checked is what Textual rendered (the compositor's strips), against a real server.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from statusdash.client import ClientError, Credentials
from statusdash.schema import AlertPublic
from statusdash.tui.app import StatusdashApp
from statusdash.tui.screens.help import HelpScreen
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.screens.lists import AlertsScreen, ServicesScreen
from statusdash.tui.source import ApiSource
from tests.conftest import Live
from tests.hostile import HOST, HOSTILE, seed_hostile, unsafe
from tests.tui.helpers import wait_for

SIZE = (220, 60)


class HostileSource(ApiSource):
    """The real source; fetching resolved alerts fails with a hostile error (for the toast)."""

    def alerts(self, state: str = "active") -> list[AlertPublic]:
        if state == "all":
            raise ClientError("refused" + HOSTILE)
        return super().alerts(state)


def _rendered(app: StatusdashApp) -> tuple[str, list[str]]:
    """The screen's text as drawn, and the links any segment would open."""
    strips = app.screen._compositor.render_strips()
    segments = [seg for strip in strips for seg in strip]
    links = [seg.style.link for seg in segments if seg.style is not None and seg.style.link]
    return "\n".join("".join(seg.text for seg in strip) for strip in strips), links


async def _check(pilot: Pilot[Any], *visible: str) -> str:
    """The screen holds no control from the data, no link, and shows ``visible`` literally."""
    app = pilot.app
    assert isinstance(app, StatusdashApp)
    await wait_for(pilot, lambda: all(v in _rendered(app)[0] for v in visible), what=f"{visible}")
    text, links = _rendered(app)
    assert unsafe(text) == [], text
    assert links == [], links
    return text


async def test_every_screen_shows_hostile_text_as_data(live_server: Live) -> None:
    seed_hostile(live_server)
    source = HostileSource(
        live_server.url, credentials=Credentials(token=live_server.token()), timeout=5.0
    )
    app = StatusdashApp(source, poll_interval=0.5, stream=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        # Fleet: the OS column, the alerts and services panels.
        await _check(pilot, HOST, r"os\x1b]0;pwned\x07", "[/x]", "[bold]B[/bold]")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await _check(pilot, "Open host")
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open web")
        await _check(pilot, f"open {HOST}")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        # Host: the facts header, disks, top processes, alerts and checks.
        await _check(pilot, r"os\x1b]0;pwned", r"/mnt\x1b", r"p\x1b]0;", r"\x9b31m", "[/x]")
        await pilot.press("escape")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen))
        await _check(pilot, r"msg\x1b]0;pwned\x07", "[bold]B[/bold]", "[link=https://e.ex")
        await pilot.press("A")  # the toast carries the hostile error
        await _check(pilot, r"refused\x1b]0;pwned")
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ServicesScreen))
        await _check(pilot, r"svc\x1b]0;pwned", r"boom\x1b]0;pwned", "[/x][bold]B[/bold]")
