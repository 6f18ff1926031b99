"""Snapshots where the TUI's truthfulness shows: flags from the rules in force, the alerts
screen with acked, silenced and resolved rows, a down host's screen (frozen data and clock)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from textual.pilot import Pilot

from statusdash.schema import HostRules, RuleInForce, RulesInForce
from statusdash.tui.app import StatusdashApp
from statusdash.tui.screens.host import HostScreen
from statusdash.tui.widgets.chart import Chart
from tests.tui.fleetdata import NOW, memory_source
from tests.tui.helpers import frozen_app, settle, wait_for

Snap = Callable[..., bool]
Source = Literal["default", "file", "override"]


def _rule(threshold: float, source: Source = "default", enabled: bool = True) -> RuleInForce:
    return RuleInForce(
        enabled=enabled,
        threshold=threshold,
        clear=threshold - 5,
        for_s=60,
        severity="warning",
        source=source,
    )


# web-03's memory alerts at 95 there (the sentiment says 75: no ! at 79%); web-06's at 70.
RULES = RulesInForce(
    rules={"cpu": _rule(90), "memory": _rule(75, "file"), "disk": _rule(90)},
    hosts={
        "web-03": HostRules(rules={"memory": _rule(95, "override")}),
        "web-06": HostRules(rules={"memory": _rule(70, "override")}),
        "web-09": HostRules(rules={"memory": _rule(75, "file", enabled=False)}),
    },
)


def _app_of(pilot: Pilot[Any]) -> StatusdashApp:
    assert isinstance(pilot.app, StatusdashApp)
    return pilot.app


def test_fleet_with_rules_in_force(snap_compare: Snap) -> None:
    source = memory_source()
    source.rules_ = RULES

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app = _app_of(pilot)
        await wait_for(pilot, lambda: app.model.rules is not None, what="rules")
        app.refresh_data()
        await pilot.pause()

    assert snap_compare(frozen_app(source), terminal_size=(100, 30), run_before=run)


def test_alerts_acked_silenced_resolved(snap_compare: Snap) -> None:
    source = memory_source()
    first = source.alerts_[0]
    source.alerts_[0] = first.model_copy(update={"acked_at": NOW, "acked_by": "ops"})
    until = (NOW + timedelta(hours=1)).isoformat()
    source.silences_ = [{"id": 1, "host": "apricot", "rule": "disk", "expires_at": until}]

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("a", "A")
        app = _app_of(pilot)
        await wait_for(pilot, lambda: source.calls.get("silences", 0) >= 1, what="silences")
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(frozen_app(source), terminal_size=(100, 12), run_before=run)


def test_down_host_screen(snap_compare: Snap) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app = _app_of(pilot)
        app.open_host("cherry")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        await wait_for(
            pilot, lambda: all(c.has_class("loaded") for c in app.screen.query(Chart)), what="c"
        )
        await app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(frozen_app(), terminal_size=(100, 30), run_before=run)
