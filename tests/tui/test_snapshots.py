"""Snapshots of every screen at 80x24 and 160x48, over a frozen fleet and a frozen clock.

Review the SVG report (snapshot_report.html) before accepting changes with --snapshot-update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from statusdash.tui.app import StatusdashApp
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.widgets.chart import Chart
from tests.tui.fleetdata import memory_source
from tests.tui.helpers import FakeClock, frozen_app, settle, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
Snap = Callable[..., bool]


def _app(pilot: Pilot[Any]) -> StatusdashApp:
    assert isinstance(pilot.app, StatusdashApp)
    return pilot.app


async def _fleet(pilot: Pilot[Any]) -> None:
    await settle(pilot)


async def _host(pilot: Pilot[Any]) -> None:
    await settle(pilot)
    await pilot.press("enter")  # apricot, first by name, with two alerts
    app = _app(pilot)
    await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
    await wait_for(
        pilot,
        lambda: all(c.has_class("loaded") for c in app.screen.query(Chart)),
        what="charts",
    )
    await app.workers.wait_for_complete()
    await pilot.pause()


def _keys_then_settle(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await pilot.pause()
        await _app(pilot).workers.wait_for_complete()
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_fleet(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(frozen_app(), terminal_size=size, run_before=_fleet)


@pytest.mark.parametrize("size", [(100, 30), (200, 60)], ids=["100x30", "200x60"])
def test_fleet_other_widths(snap_compare: Snap, size: tuple[int, int]) -> None:
    """The columns keep their widths; the gaps widen to 3, then the hosts' OS fills the rest."""
    assert snap_compare(frozen_app(), terminal_size=size, run_before=_fleet)


@pytest.mark.parametrize("size", SIZES)
def test_fleet_sorted_by_cpu_filtered(snap_compare: Snap, size: tuple[int, int]) -> None:
    keys = ("s", "slash", "w", "e", "b", "enter")  # host -> cpu; filter "web"
    assert snap_compare(frozen_app(), terminal_size=size, run_before=_keys_then_settle(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_host(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(frozen_app(), terminal_size=size, run_before=_host)


@pytest.mark.parametrize("size", SIZES)
def test_alerts(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(frozen_app(), terminal_size=size, run_before=_keys_then_settle("a"))


@pytest.mark.parametrize("size", SIZES)
def test_services(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(frozen_app(), terminal_size=size, run_before=_keys_then_settle("v"))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Snap, size: tuple[int, int]) -> None:
    run = _keys_then_settle("question_mark")
    assert snap_compare(frozen_app(), terminal_size=size, run_before=run)


def test_offline_keeps_last_data(snap_compare: Snap) -> None:
    """The server went away: rows stay, up hosts turn ◐, the header says offline."""
    source, clock = memory_source(), FakeClock()

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app = _app(pilot)
        source.offline = True
        clock.advance(45)
        app.poll_now()
        await wait_for(pilot, lambda: app.model.link.failures >= 1, what="a failed poll")
        app.refresh_data()
        await pilot.pause()

    app = frozen_app(source, clock=clock)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run)


def test_no_color(snap_compare: Snap, monkeypatch: pytest.MonkeyPatch) -> None:
    """Monochrome: markers and ``!`` still carry status and thresholds."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(frozen_app(), terminal_size=(80, 24), run_before=_fleet)
