"""Alert rules on sequences (the engine), the rules file, durations, and the alert store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusdash import durations
from statusdash.schema import AlertState
from statusdash.server.alerts.engine import Change, Engine, Transition
from statusdash.server.alerts.rules import (
    RulesError,
    RuleSet,
    RuleSpec,
    default_rules,
    load_rules,
)

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


# --- the engine on sequences ----------------------------------------------------------------------


def _rules(threshold: float = 90, clear: float = 85, for_s: float = 30) -> RuleSet:
    base = default_rules()
    base["cpu"] = RuleSpec(True, threshold, clear, for_s, "warning")
    return RuleSet(base)


def _run(engine: Engine, values: Sequence[float], step_s: float = 10) -> list[Transition]:
    out = []
    for i, v in enumerate(values):
        t = engine.observe("cpu", "web-1", "", v, T0 + timedelta(seconds=i * step_s))
        if t is not None:
            out.append(t)
    return out


def test_flapping_at_the_threshold_raises_one_alert() -> None:
    values = [91, 89, 91, 88, 92, 86, 91, 89, 90, 87, 91, 88]
    ts = _run(Engine(_rules()), values)
    assert [t.change for t in ts] == [Change.pending, Change.fired]
    assert ts[1].snapshot.fired_at == T0 + timedelta(seconds=30)
    assert ts[1].alert.state == AlertState.firing


def test_pending_duration_is_respected() -> None:
    engine = Engine(_rules(for_s=30))
    ts = _run(engine, [95, 95, 95, 60])  # 0 s, 10 s, 20 s: never 30 s long
    assert [t.change for t in ts] == [Change.pending, Change.cancelled]
    assert not engine.open
    ts = _run(Engine(_rules(for_s=30)), [95, 95, 95, 95])
    assert [t.change for t in ts] == [Change.pending, Change.fired]


def test_clear_threshold_is_respected() -> None:
    engine = Engine(_rules(for_s=0))
    ts = _run(engine, [95, 89, 86, 85.5, 84.9])
    assert [t.change for t in ts] == [Change.fired, Change.resolved]
    resolved = ts[1].snapshot
    assert resolved.value == 84.9 and resolved.resolved_at == T0 + timedelta(seconds=40)
    # A second episode is a second alert.
    ts = _run(engine, [91])
    assert [t.change for t in ts] == [Change.fired]
    assert ts[0].alert is not resolved


def test_messages_name_host_and_subject() -> None:
    engine = Engine(_rules(for_s=0))
    t = engine.observe("disk", "db-1", "/var/lib/pg", 97.0, T0)
    assert t is not None and "db-1" in t.alert.message and "/var/lib/pg" in t.alert.message
    t = engine.observe("service", "db-1", "postgres", 1.0, T0, "connection refused")
    assert t is not None and t.change == Change.fired
    assert t.alert.message == "db-1: service postgres unhealthy: connection refused"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=60))
def test_any_sequence_keeps_the_lifecycle(values: list[float]) -> None:
    threshold, clear, for_s = 90.0, 85.0, 20.0
    engine = Engine(_rules(threshold, clear, for_s))
    state = "none"
    for i, v in enumerate(values):
        now = T0 + timedelta(seconds=i * 10)
        t = engine.observe("cpu", "h", "", v, now)
        assert len(engine.open) <= 1
        if t is None:
            continue
        if t.change == Change.pending:
            assert state == "none" and v >= threshold
            state = "pending"
        elif t.change == Change.fired:
            assert state in ("none", "pending") and v >= clear
            assert (now - t.alert.started_at).total_seconds() >= for_s
            state = "firing"
        elif t.change == Change.resolved:
            assert state == "firing" and v < clear
            state = "none"
        else:
            assert state == "pending" and v < clear
            state = "none"


# --- the rules file -------------------------------------------------------------------------------


def test_rules_file_overrides_per_host_and_mount(tmp_path: Path) -> None:
    toml = tmp_path / "rules.toml"
    toml.write_text(
        """
[rules.disk]
threshold = 85
for = "2m"
[[overrides]]
host = "db-*"
rule = "disk"
mount = "/var/lib/*"
threshold = 95
clear = 92
[[overrides]]
host = "build-1"
rule = "cpu"
enabled = false
"""
    )
    rules = load_rules(toml, default_rules(90, 85, 90))
    assert rules.spec("disk", "web-1", "/") == RuleSpec(True, 85, 80, 120, "warning")
    assert rules.spec("disk", "db-1", "/var/lib/pg").threshold == 95
    assert rules.spec("disk", "db-1", "/var/lib/pg").clear == 92
    assert rules.spec("disk", "db-1", "/").threshold == 85
    assert not rules.spec("cpu", "build-1").enabled
    assert rules.spec("cpu", "build-2").enabled
    yml = tmp_path / "rules.yaml"
    yml.write_text(
        "rules:\n  memory:\n    threshold: 70\noverrides:\n  - {rule: cpu, threshold: 50}\n"
    )
    rules = load_rules(yml, default_rules())
    assert rules.spec("memory", "x").threshold == 70 and rules.spec("memory", "x").clear == 65
    assert rules.spec("cpu", "any").threshold == 50


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[rules.cpu]\nthreshold = 'high'\n", "rules.cpu.threshold"),
        ("[rules.cpu]\nthreshold = 80\nclear = 90\n", "clear (90) is above threshold (80)"),
        ("[rules.gpu]\nthreshold = 80\n", "rules.gpu"),
        ("[rules.cpu\n", "not valid TOML"),
        ("[[overrides]]\nrule = 'disk'\nfor = 'soon'\n", "overrides[0].for"),
    ],
)
def test_a_bad_rules_file_says_where(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RulesError) as err:
        load_rules(path, default_rules())
    assert str(path) in str(err.value) and needle in str(err.value)


def test_durations() -> None:
    assert durations.parse("90s") == 90 and durations.parse("2h") == 7200
    assert durations.parse(5) == 5 and durations.parse("1.5m") == 90
    with pytest.raises(ValueError, match="not a duration"):
        durations.parse("soon")


def test_store_prunes_old_history(tmp_path: Path) -> None:
    from statusdash.server.alerts.engine import Alert
    from statusdash.server.alerts.store import AlertStore, alert_row

    store = AlertStore(tmp_path / "x.db")
    store.open()
    old = Alert("cpu", "h", "", AlertState.resolved, "warning", "m", T0)
    old.resolved_at = T0
    new = Alert("cpu", "h", "", AlertState.firing, "warning", "m", T0)
    ids = [store.save(None, alert_row(a)) for a in (old, new)]
    store.record_failure(T0, "json+http://x", "json", "firing", ids[0], 3, "HTTP 500")
    store.prune(T0 + timedelta(days=1))
    assert store.get(ids[0]) is None and store.get(ids[1]) is not None
    assert store.failures(10) == []
    store.close()
