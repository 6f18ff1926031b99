"""The fleet's tag filter (``/ role=db``) and group-by (``t``) over a frozen, tagged fleet:
Pilot tests of what is shown and where the cursor goes, and a snapshot at 80x24."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from statusdash.tui.app import StatusdashApp
from statusdash.tui.grouping import Filter, Section, lines, next_group
from statusdash.tui.source import MemorySource
from statusdash.tui.widgets.fleet_table import FleetTable
from tests.tui.fleetdata import frames, memory_source
from tests.tui.helpers import frozen_app, settle, shown

# The tags each host of the frozen fleet carries (the web-NN hosts: role=web, half in fra).
TAGS = {
    "platform-vps": {"role": "db", "dc": "fra"},
    "vpn-gateway": {"role": "edge", "dc": "ber"},
    "apricot": {"role": "db", "dc": "ber"},
    "black": {"dc": "fra"},
}


def tags_of(host: str) -> dict[str, str]:
    if host in TAGS:
        return TAGS[host]
    if host.startswith("web-"):
        return {"role": "web", "dc": "fra" if int(host[4:]) % 2 else "ber"}
    return {}  # cherry: none


def tagged_source() -> MemorySource:
    src = memory_source()
    src.frames = [[h.model_copy(update={"tags": tags_of(h.host)}) for h in f] for f in frames()]
    return src


def table(app: StatusdashApp) -> FleetTable:
    return app.screen.query_one(FleetTable)


async def test_filter_by_tag_and_words() -> None:
    app = frozen_app(tagged_source())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"role=db", "enter")
        assert table(app).rows_shown == ["apricot", "platform-vps"]
        text = await shown(pilot)
        assert "filter “role=db” 2/23" in text
        await pilot.press("slash", "space", *"dc=ber", "enter")  # AND: both tags
        assert table(app).rows_shown == ["apricot"]
        await pilot.press("escape")
        await pilot.press("slash", *"edge", "enter")  # a plain word finds a tag's value too
        assert table(app).rows_shown == ["vpn-gateway"]
        await pilot.press("slash", "ctrl+u", *"role=nope", "enter")
        assert table(app).rows_shown == []
        assert "no host matches “role=nope”" in await shown(pilot)


async def test_group_by_cycles_over_the_tag_keys_with_section_rows() -> None:
    app = frozen_app(tagged_source())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "t Group" in await shown(pilot)
        await pilot.press("t")
        assert app.model.group_by == "dc"
        text = await shown(pilot)
        assert "▾ dc=ber · 11 hosts" in text and "▾ dc=fra · 11 hosts" in text
        assert "▾ dc (none) · 1 host" in text and "group dc · sort host ▲" in text
        view = table(app).rows_shown
        assert view[:3] == ["apricot", "vpn-gateway", "web-02"] and view[-1] == "cherry"

        await pilot.press("t")
        assert app.model.group_by == "role"
        lines_ = app.model.lines()
        sections = [(x.label, x.count) for x in lines_ if isinstance(x, Section)]
        assert sections == [
            ("role=db", 2), ("role=edge", 1), ("role=web", 18), ("role (none)", 2),
        ]  # fmt: skip
        # The cursor never rests on a section row: it starts on the first host, skips over them.
        t = table(app)
        await pilot.press("home")
        assert t.selected == "apricot" and t.cursor == 1
        await pilot.press("down", "down")
        assert t.selected == "vpn-gateway"
        await pilot.press("up")
        assert t.selected == "platform-vps"
        await pilot.press("end")
        assert t.selected == "cherry"
        await pilot.press("enter")  # a host opens as ever
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HostScreen"
        await pilot.press("escape")
        await pilot.pause()

        await pilot.press("t")  # after the last key: no grouping
        assert app.model.group_by is None
        assert "▾" not in await shown(pilot)


async def test_no_tags_no_group_key_in_the_footer() -> None:
    app = frozen_app(memory_source())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "Group" not in await shown(pilot)
        await pilot.press("t")
        assert app.model.group_by is None


def test_grouping_helpers() -> None:
    f = Filter.parse("Role=db web")
    assert f.tags == {"role": "db"} and f.words == ["web"]
    assert next_group(None, ["dc", "role"]) == "dc"
    assert next_group("dc", ["dc", "role"]) == "role"
    assert next_group("role", ["dc", "role"]) is None
    assert next_group("gone", ["dc"]) == "dc" and next_group(None, []) is None
    hosts = [h.model_copy(update={"tags": tags_of(h.host)}) for h in frames(1)[0][:3]]
    assert lines(hosts, None) == [h.host for h in hosts]


@pytest.mark.parametrize("size", [pytest.param((80, 24), id="80x24")])
def test_grouped_fleet_snapshot(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("t", "t")  # group by role
        await pilot.pause()

    assert snap_compare(frozen_app(tagged_source()), terminal_size=size, run_before=run)
