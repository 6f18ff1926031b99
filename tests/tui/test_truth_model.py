"""The model's judgement: the rules in force and open alerts decide every flag; when the rules
are fetched again; alerts sorted by severity then age; silences matched as the server does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from statusdash.schema import AlertPublic, HostRules, RuleInForce, RulesInForce
from statusdash.tui.fmt import Thresholds
from statusdash.tui.model import RULES_MIN_GAP_S, RULES_REFRESH_S, FleetModel, sort_alerts
from statusdash.tui.widgets.alert_rows import alert_cells
from statusdash.tui.widgets.host_panels import disk_rows, facts_line
from statusdash.tui.widgets.lists import alert_detail, alert_when, silenced_by
from tests.tui.fleetdata import NOW, detail, frames


def _rule(threshold: float, enabled: bool = True, source: str = "default") -> RuleInForce:
    return RuleInForce.model_validate(
        {
            "enabled": enabled,
            "threshold": threshold,
            "clear": threshold - 5,
            "for_s": 60,
            "severity": "warning",
            "source": source,
        }
    )


RULES = RulesInForce(
    rules={"cpu": _rule(90), "memory": _rule(85), "disk": _rule(90)},
    hosts={
        "apricot": HostRules(
            rules={"cpu": _rule(99, source="override"), "memory": _rule(85)},
            disks={"/": _rule(95, source="override"), "/data": _rule(50, source="override")},
        ),
        "black": HostRules(rules={"cpu": _rule(90, enabled=False, source="override")}),
    },
)


def _alert(
    i: int, severity: str, minutes: float, state: str = "firing", **kw: object
) -> AlertPublic:
    data: dict[str, object] = {
        "id": i,
        "rule": "cpu",
        "host": "apricot",
        "state": state,
        "severity": severity,
        "value": 97,
        "threshold": 90,
        "message": "apricot: CPU at 97% (alert at 90%, clears below 85%)",
        "started_at": NOW - timedelta(minutes=minutes),
    }
    data.update(kw)
    return AlertPublic.model_validate(data)


def _model() -> FleetModel:
    m = FleetModel(Thresholds(cpu=10, memory=10, disk=10), NOW)  # env values the rules replace
    m.apply_hosts(frames(1)[0], NOW)
    return m


def test_flags_follow_the_rules_in_force_then_the_thresholds() -> None:
    m = _model()
    assert m.flag("apricot", "cpu", 50.0) == "crit"  # before the rules: the local thresholds
    m.set_rules(RULES, NOW)
    assert m.flag("apricot", "cpu", 97.0) == "warn"  # 99 there: near, not over
    assert m.flag("apricot", "cpu", 99.0) == "crit"
    assert m.flag("black", "cpu", 100.0) == "ok"  # the rule is off for black
    assert m.flag("vpn-gateway", "cpu", 91.0) == "crit"  # no host entry: the global rule
    assert m.flag("apricot", "disk", 60.0, "/data") == "crit"
    assert m.flag("apricot", "disk", 60.0, "/") == "ok"
    assert m.flag("apricot", "cpu", None) == "none"
    judge = m.disk_judge("apricot")
    assert (judge("/data", 51.0), judge("/", 94.0)) == ("crit", "warn")


def test_an_open_alert_always_flags() -> None:
    m = _model()
    m.set_rules(RULES, NOW)
    m.set_alerts([_alert(1, "warning", 3, value=40.0)])
    assert m.flag("apricot", "cpu", 40.0) == "crit"  # below 99: the alert still fires
    assert m.flag("apricot", "memory", 40.0) == "ok"
    m.set_alerts([_alert(2, "warning", 3, rule="disk", subject="/data")])
    assert m.flag("apricot", "disk", 10.0, "/", any_subject=True) == "crit"  # the fleet's DISK
    assert m.flag("apricot", "disk", 10.0, "/") == "ok"  # the host screen's / row
    m.set_alerts([_alert(3, "warning", 3, state="resolved")])
    assert m.flag("apricot", "cpu", 40.0) == "ok"


def test_rules_are_fetched_at_start_when_stale_and_for_new_hosts() -> None:
    m = _model()
    assert m.rules_wanted(NOW)
    m.set_rules(RULES, NOW)
    later = NOW + timedelta(seconds=RULES_MIN_GAP_S)
    assert not m.rules_wanted(NOW + timedelta(seconds=1))
    assert m.rules_wanted(later)  # hosts shown that the answer did not list
    covered = RULES.model_copy(
        update={"hosts": {h: HostRules(disks={"/": _rule(90)}) for h in m.rows}}
    )
    m.set_rules(covered, NOW)
    assert not m.rules_wanted(later)
    assert m.rules_wanted(NOW + timedelta(seconds=RULES_REFRESH_S))
    m.set_rules(None, NOW, error="server unreachable")  # kept; tried again soon
    assert m.rules is covered and m.rules_wanted(later)
    fresh = FleetModel(Thresholds(), NOW)
    fresh.set_rules(None, NOW)  # a server without the route: not asked again for a while
    assert not fresh.rules_wanted(later) and fresh.rules_wanted(
        NOW + timedelta(seconds=RULES_REFRESH_S)
    )


def test_alerts_sorted_by_severity_then_newest() -> None:
    rows = [
        _alert(1, "warning", 30),
        _alert(2, "critical", 5, state="pending"),
        _alert(3, "critical", 50),
        _alert(4, "info", 1),
        _alert(5, "warning", 2),
        _alert(6, "critical", 1, state="resolved"),
    ]
    assert [a.id for a in sort_alerts(rows)] == [3, 2, 5, 1, 4, 6]


def test_rows_say_nothing_untrue() -> None:
    open_ = _alert(1, "warning", 4, fired_at=NOW - timedelta(minutes=3))
    assert alert_when(open_, NOW) == "for 4m"  # from when the condition first held
    cells = [c if isinstance(c, str) else c.plain for c in alert_cells(open_, False, NOW)]
    assert cells[1:] == ["warning", "apricot", "cpu", "97%", "≥ 90%", "for 4m", "firing", ""]
    done = _alert(
        2, "critical", 10, state="resolved", value=40.0, resolved_at=NOW - timedelta(minutes=3)
    )
    assert alert_when(done, NOW) == "resolved 3m ago after 7m"
    offline = _alert(3, "critical", 10, state="resolved", rule="offline", value=None,
                     message="apricot: offline, no report for 2m")  # fmt: skip
    assert alert_detail(offline) == "was: offline, no report for 2m"
    acked = _alert(4, "warning", 1, acked_at=NOW, acked_by="ops")
    assert alert_cells(acked, True, NOW)[7] == "firing ✓ops ⊘silenced"


def test_silences_match_as_the_server_matches() -> None:
    a = _alert(1, "warning", 1, rule="disk", subject="/var/lib/pg")
    future = (NOW + timedelta(hours=1)).isoformat()
    past = (NOW - timedelta(seconds=1)).isoformat()
    assert silenced_by(a, [{"host": "apr*", "expires_at": future}], NOW)
    assert silenced_by(a, [{"rule": "disk", "subject": "/var/*", "expires_at": future}], NOW)
    assert not silenced_by(a, [{"rule": "cpu", "expires_at": future}], NOW)
    assert not silenced_by(a, [{"host": "web-*", "expires_at": future}], NOW)
    assert not silenced_by(a, [{"host": "apricot", "expires_at": past}], NOW)


def test_a_down_host_is_not_shown_as_current() -> None:
    cherry = next(h for h in frames(1)[0] if h.host == "cherry")
    d = detail(cherry)
    line = facts_line("cherry", cherry, d, 3 * 3600.0).plain
    assert "(down 3h)" in line and "was up 9d" in line and "uptime" not in line
    rows = disk_rows(d, 90.0)
    assert all(isinstance(r[2], tuple) and r[2][1] == "$text-muted" for r in rows)


async def test_alert_keys_act_on_the_selected_row() -> None:
    from textual.widgets import DataTable

    from statusdash.tui.screens.lists import AlertsScreen
    from tests.tui.fleetdata import memory_source
    from tests.tui.helpers import frozen_app, settle, wait_for

    source = memory_source()
    app = frozen_app(source)
    async with app.run_test(size=(100, 20)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AlertsScreen))
        screen = app.screen
        assert isinstance(screen, AlertsScreen)

        def table() -> DataTable[Any]:
            return screen.query_one(DataTable)

        await wait_for(pilot, lambda: table().row_count == 2, what="rows")
        await pilot.press("down")  # the second row: apricot's disk alert
        selected = screen.selected()
        assert selected is not None and selected.rule == "disk"
        await pilot.press("u")  # nothing mutes it yet: said so, nothing sent
        await pilot.pause(0.1)
        assert "unsilence" not in source.calls
        for key, action in (("r", "resolve"), ("k", "ack"), ("s", "silence"), ("u", "unsilence")):
            await pilot.press(key)
            await wait_for(pilot, lambda a=action: source.calls.get(a, 0) == 1, what=action)  # type: ignore[misc]
            if key == "s":
                assert source.silences_ == [
                    {"id": 1, "host": "apricot", "rule": "disk", "subject": "/"}
                ]
                await wait_for(pilot, lambda: "⊘silenced" in str(table().get_row_at(1)))
        assert source.silences_ == []  # ``u`` ended the silence that muted it
        await wait_for(pilot, lambda: "⊘silenced" not in str(table().get_row_at(1)))
