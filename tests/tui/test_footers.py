"""Issue 11 item 14 (and 9's prompt): every screen at 80x24 says what its keys do, whole.

Footers read ``esc Back`` where esc goes back, no entry is cut to its key alone, the help
overlay fits without a scrollbar (whose thumb read as a stray glyph), and the login prompt and
the expired-login status bar fit too. Snapshots: review snapshot_report.html before
``--snapshot-update``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.containers import VerticalScroll
from textual.pilot import Pilot

from statusdash.tui.app import StatusdashApp
from statusdash.tui.messages import FetchFailed
from statusdash.tui.screens.help import HelpScreen
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.screens.login import LoginScreen
from statusdash.tui.widgets.chart import Chart
from tests.tui.helpers import frozen_app, screen_text, settle, shown, wait_for

SIZE = (80, 24)
Snap = Callable[..., bool]
# screen -> keys from the settled fleet, and the footer entries it must show whole
SCREENS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fleet": ((), ("⏎ Open host", "s Sort", "/ Filter", "a Alerts", "v Services", "? Help")),
    "host": (("enter",), ("esc Back", "1-5 Range", "a Alerts", "v Services", "? Help")),
    "alerts": (("a",), ("A Show all/active", "esc Fleet", "v Services", "? Help")),
    "services": (("v",), ("esc Fleet", "a Alerts", "? Help")),
}


def _app(pilot: Pilot[Any]) -> StatusdashApp:
    assert isinstance(pilot.app, StatusdashApp)
    return pilot.app


async def _open(pilot: Pilot[Any], keys: tuple[str, ...]) -> None:
    await settle(pilot)
    await pilot.press(*keys)
    app = _app(pilot)
    if "enter" in keys:
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen), what="host")
        await wait_for(
            pilot, lambda: all(c.has_class("loaded") for c in app.screen.query(Chart)), what="c"
        )
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _expire(pilot: Pilot[Any]) -> None:
    """The server refuses the login (as a poll answered 401 would say)."""
    app = _app(pilot)
    app.post_message(FetchFailed("token expired (HTTP 401, unauthorized)", auth=True))
    await wait_for(pilot, lambda: app.login_expired, what="expired")
    app.poll_interval = 3600.0
    await pilot.pause()


@pytest.mark.parametrize("name", list(SCREENS))
async def test_every_footer_says_what_each_key_does_at_80x24(name: str) -> None:
    keys, wanted = SCREENS[name]
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, keys)
        footer = (await shown(pilot)).splitlines()[-1]
        for entry in wanted:
            assert entry in footer, footer
        # No entry cut to its key: every key in the footer has its word after it.
        assert not re.search(r"(^|\s)\S\s*(▏|$)", footer), footer

        # The help overlay fits: no scrollbar, every row whole.
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await pilot.pause()
        box = app.screen.query_one("#help-box", VerticalScroll)
        assert box.max_scroll_y == 0 and not box.show_vertical_scrollbar
        r = box.region
        text = "\n".join(
            line[r.x : r.right] for line in screen_text(app).splitlines()[r.y : r.bottom]
        )
        assert "Quit" in text and "Help" in text and "esc closes" in text
        assert "…" not in text and not set("▁▂▃▄▅▆▇█") & set(text)  # nothing cut, no thumb


async def test_the_login_prompt_and_the_expired_bar_fit_at_80x24() -> None:
    app = frozen_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await _expire(pilot)
        top = (await shown(pilot)).splitlines()[0]
        assert top.rstrip().endswith("login expired · L log in"), top
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LoginScreen), what="prompt")
        await pilot.press(*"secret")
        text = await shown(pilot)
        assert "admin password for memory" in text and "esc cancels" in text
        assert "••••••" in text and "secret" not in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, LoginScreen), what="closed")
        assert app.login_expired


def _then(*keys: str, help_: bool = False) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await _open(pilot, keys)
        if help_:
            await pilot.press("question_mark")
            await pilot.pause()

    return run


@pytest.mark.parametrize("name", ["host", "alerts", "services"])
def test_help_snapshot(snap_compare: Snap, name: str) -> None:
    """The fleet's help is in test_snapshots.py; these are the other screens'."""
    keys = SCREENS[name][0]
    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=_then(*keys, help_=True))


def test_login_prompt_snapshot(snap_compare: Snap) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await _expire(pilot)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, LoginScreen), what="prompt")
        await pilot.press(*"secret")
        await pilot.pause()

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=run)


def test_login_expired_fleet_snapshot(snap_compare: Snap) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await _expire(pilot)
        _app(pilot).refresh_data()
        await pilot.pause()

    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=run)
