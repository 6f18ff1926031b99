"""Pilot tests over the frozen in-memory fleet: keys, mouse, screens, stream and failures."""

from __future__ import annotations

import re
from typing import Any

import pytest
from textual.pilot import Pilot

from statusdash.schema import HostSummary
from statusdash.tui.app import StatusdashApp
from statusdash.tui.model import ConnState, SortKey
from statusdash.tui.screens.fleet import FleetScreen
from statusdash.tui.screens.help import HelpScreen
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.screens.lists import AlertsScreen, ServicesScreen
from statusdash.tui.source import MemorySource, QueueStream, StreamEvent
from statusdash.tui.widgets.chart import Chart
from statusdash.tui.widgets.fleet_table import FleetTable
from tests.tui.fleetdata import NOW, memory_source
from tests.tui.helpers import frozen_app, screen_text, settle, shown, wait_for


def sort_key(app: StatusdashApp) -> SortKey:
    return app.model.sort_key


def table(app: StatusdashApp) -> FleetTable:
    return app.screen.query_one(FleetTable)


async def charts_loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await wait_for(
        pilot, lambda: all(c.has_class("loaded") for c in app.screen.query(Chart)), what="charts"
    )


async def test_navigate_open_host_change_range_and_back() -> None:
    source = memory_source()
    app = frozen_app(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert table(app).rows_shown[:2] == ["apricot", "black"]
        await pilot.press("down", "down", "down")
        assert table(app).selected == "platform-vps"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        screen = app.screen
        assert isinstance(screen, HostScreen) and screen.host == "platform-vps"
        await charts_loaded(pilot)
        assert "platform-vps" in (await shown(pilot)) and "postgres" in (await shown(pilot))
        history_calls = source.calls["history"]
        await pilot.press("3")
        assert screen.since == "24h"
        await charts_loaded(pilot)
        assert source.calls["history"] == history_calls + 6  # four charts, six series
        assert "[24h]" in (await shown(pilot))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
        assert table(app).selected == "platform-vps"  # the cursor stayed on the host


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (160, 48), (200, 60)])
async def test_fleet_reads_the_same_at_every_size(size: tuple[int, int]) -> None:
    app = frozen_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        lines = (await shown(pilot)).splitlines()
        header = next(line for line in lines if "HOST" in line)
        for label in ("CPU", "MEM", "DISK", "LOAD", "NET ↓/↑", "UP", "SEEN"):
            assert label in header, (size, label)
        rows = [ln for ln in lines if re.match(r"│ [●▲◐] \S+ +\d+%", ln)]
        assert len(rows) >= 5
        for row in rows:  # the sparkline (full from the first answer) right after the CPU %
            assert re.search(r"\d%[ !] [▁▂▃▄▅▆▇█]{8,} ", row), (size, row)
        # Every row puts MEM's % in the same column, whatever the host's name.
        mem = {re.search(r"\d%[ !] [▁-█]+ +\d+%", r).end() for r in rows}  # type: ignore[union-attr]
        assert len(mem) == 1, (size, mem)
        # The server's memory threshold (75%) flags web-03 at 79%; the local default (85) would not.
        web03 = next(r for r in rows if "web-03" in r)
        assert "79%!" in web03


@pytest.mark.parametrize(("size", "last"), [((80, 24), "1201"), ((120, 40), "app")])
async def test_host_panels_drop_columns_rather_than_cut_values(
    size: tuple[int, int], last: str
) -> None:
    app = frozen_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        await wait_for(pilot, lambda: "postgres" in screen_text(app), what="processes")
        line = next(ln for ln in (await shown(pilot)).splitlines() if "python3" in ln)
        cells = line.split("│")
        procs = next(c for c in cells if "python3" in c)
        assert "…" not in procs and "45%" in procs and "310M" in procs, procs
        assert "1201" in procs and procs.split()[-1] == last, procs  # the user goes first
        disks = next(c for c in cells if "/data" in c)
        assert "41%" in disks and "1.5T/3.6T" in disks and "…" not in disks, disks


async def test_sort_by_keys_and_by_header_click() -> None:
    app = frozen_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("S")  # host -> status (columns left to right): down, then alerts
        assert sort_key(app) is SortKey.status
        assert table(app).rows_shown[:2] == ["cherry", "apricot"]
        await pilot.press("s", "s")  # -> host -> cpu, largest first
        rows = table(app).rows_shown
        cpus = [app.model.rows[h].summary.cpu_percent or 0 for h in rows]
        assert sort_key(app) is SortKey.cpu and cpus == sorted(cpus, reverse=True)
        await pilot.press("r")  # smallest first; a host without a value stays last
        assert table(app).rows_shown[-2:] == [rows[0], "cherry"]
        # A click on the DISK header sorts by disk, the fullest first.
        lay = table(app).layout_for(table(app).scrollable_content_region.width)
        x = next(cx for key, cx, _w in lay.cells if key is SortKey.disk)
        await pilot.click(FleetTable, offset=(x + 1, 0))
        await pilot.pause()
        assert sort_key(app) is SortKey.disk and table(app).rows_shown[0] == "apricot"
        # A click on a row selects it; a second click opens it.
        await pilot.click(FleetTable, offset=(5, 2))
        await pilot.pause()
        picked = table(app).selected
        assert picked == table(app).rows_shown[1]
        await pilot.click(FleetTable, offset=(5, 2))
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        assert isinstance(app.screen, HostScreen) and app.screen.host == picked


async def test_filter_narrows_and_escape_clears() -> None:
    app = frozen_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"web-1", "enter")
        assert table(app).rows_shown == [f"web-{i}" for i in range(10, 19)]
        assert table(app).has_focus
        assert "filter “web-1” 9/23" in (await shown(pilot))
        await pilot.press("slash", *"zzq")  # q types into the filter; it does not quit
        assert app.is_running
        assert table(app).rows_shown == []
        assert "no host matches “web-1zzq”" in (await shown(pilot))
        await pilot.press("escape")
        assert len(table(app).rows_shown) == 23 and app.model.filter_text == ""


async def test_screens_help_and_palette() -> None:
    app = frozen_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen))
        assert "disk /  93%    ≥ 90%  for 42m" in (await shown(pilot))  # one value per row
        await pilot.press("A")  # resolved ones too, fetched in a worker
        await wait_for(pilot, lambda: "resolved 2h ago" in screen_text(app), what="all alerts")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        assert isinstance(app.screen, HostScreen) and app.screen.host == "apricot"
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, ServicesScreen))
        assert "image-generator" in (await shown(pilot)) and "refused" in (await shown(pilot))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, FleetScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = await shown(pilot)
        for words in (
            "Open host",
            "Sort",
            "Reverse",
            "Filter",
            "Alerts",
            "Services",
            "Quit",
            "First host",
            "Page down",
            "command palette",
        ):
            assert words in text, words
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open web-05")
        await wait_for(pilot, lambda: "open web-05" in screen_text(app), what="palette hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        assert isinstance(app.screen, HostScreen) and app.screen.host == "web-05"
        await pilot.press("question_mark")  # the host screen's keys, ranges included
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "30d" in (await shown(pilot)) and "Back" in (await shown(pilot))


async def test_stream_updates_rows_and_falls_back_to_polling() -> None:
    stream = QueueStream()
    source = memory_source()
    source.stream = stream
    app = frozen_app(source, stream=True, live_poll_interval=3600.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.model.link.state(NOW) is ConnState.live, what="live")
        await wait_for(pilot, lambda: "apricot" in app.model.rows, what="first poll")
        data = app.model.rows["apricot"].summary.model_dump(mode="json")
        data.update(cpu_percent=42.0, collected_at="2026-11-27T12:00:00Z")
        stream.put(StreamEvent("host.updated", data))
        stream.put(StreamEvent("host.updated", {"host": "not a summary"}))  # ignored
        await wait_for(
            pilot,
            lambda: app.model.rows["apricot"].summary.cpu_percent == 42.0,
            what="streamed update",
        )
        assert "live ●" in (await shown(pilot))
        polls = source.calls["hosts"]
        stream.put(StreamEvent("alert.triggered", {"id": 9}))  # brings an early poll
        await wait_for(pilot, lambda: source.calls["hosts"] > polls, what="early poll")
        stream.drop()
        await wait_for(pilot, lambda: not app.model.link.streaming, what="stream closed")
        assert app.model.link.state(NOW) is ConnState.polling
        assert app.is_running


async def test_server_away_keeps_data_and_recovers() -> None:
    source = memory_source()
    app = frozen_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.poll_interval = 0.01
        source.offline = True
        app.poll_now()
        await wait_for(pilot, lambda: app.model.link.failures >= 2, what="failures")
        assert app.model.link.state(NOW) is ConnState.reconnecting
        assert len(table(app).rows_shown) == 23  # the last data stays
        text = await shown(pilot)
        assert "reconnecting · data 0s old" in text and "connection refused" in text
        assert "● platform-vps" not in text and "◐ platform-vps" in text  # shown as stale
        source.offline = False
        app.poll_now()
        await wait_for(pilot, lambda: app.model.link.failures == 0, what="recovery")
        assert app.model.link.state(NOW) is ConnState.polling
        assert "● platform-vps" in (await shown(pilot))


class Exploding(MemorySource):
    """A source whose answers break in a way no client error covers."""

    explode = True

    def hosts(self) -> list[HostSummary]:
        if self.explode:
            raise RuntimeError("boom")
        return super().hosts()


async def test_unexpected_worker_error_never_exits() -> None:
    base = memory_source()
    source = Exploding(frames=base.frames, sentiment_=base.sentiment_)
    app = frozen_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.model.link.failures >= 1, what="a failure")
        assert app.is_running and "RuntimeError: boom" in app.model.link.error
        source.explode = False
        app.poll_now()
        await wait_for(pilot, lambda: bool(app.model.rows), what="rows")


async def test_no_polling_while_a_modal_is_open() -> None:
    source = memory_source()
    app = frozen_app(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.poll_interval = 0.01
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        app.poll_now()
        await pilot.pause(0.1)
        await app.workers.wait_for_complete()
        calls = source.calls["hosts"]
        await pilot.pause(0.3)
        assert source.calls["hosts"] == calls
        await pilot.press("escape")
        await wait_for(pilot, lambda: source.calls["hosts"] > calls, what="polls again")
