"""The 90-day bars over a real SQLite file: how a day counts, and no data is never 100 %."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from statusdash.server.alerts.rules import RulesError, default_rules, load_rules
from statusdash.server.db import connect, ensure_schema
from statusdash.server.statuspage.bars import DAY_S, DAYS, HOUR_S, Day, compute, day_starts
from statusdash.server.statuspage.config import GroupEntry, PageConfig, ServiceEntry

D3 = 20_000 * DAY_S  # "today" (a UTC midnight); the clock stands at 06:30 on it
NOW = D3 + 6 * HOUR_S + 1800
D1, D2 = D3 - 2 * DAY_S, D3 - DAY_S
KEPT = 30 * DAY_S


def _db(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "statusdash.db"
    ensure_schema(path)
    return connect(path, "NORMAL")


def _host(conn: sqlite3.Connection, name: str, hours: list[int]) -> None:
    cur = conn.execute(
        "INSERT INTO hosts (name, first_seen, last_seen, last_collected, interval_s, latest)"
        " VALUES (?, 0, 0, 0, 10, '{}')",
        (name,),
    )
    for t in hours:
        conn.execute("INSERT INTO rollup_1h (host_id, t, n) VALUES (?, ?, 360)", (cur.lastrowid, t))


def _service(conn: sqlite3.Connection, host: str, name: str) -> None:
    conn.execute(
        "INSERT INTO service_health (host, name, status, received_at, expected_s, metrics)"
        " VALUES (?, ?, 'healthy', 0, 60, '{}')",
        (host, name),
    )


def _outage(
    conn: sqlite3.Connection, host: str, name: str, start: float, end: float | None
) -> None:
    conn.execute(
        "INSERT INTO alerts (rule, host, subject, state, severity, message, started_at, fired_at,"
        " resolved_at, notified_firing, notified_resolved)"
        " VALUES ('service', ?, ?, ?, 'critical', 'x', ?, ?, ?, 1, 1)",
        (host, name, "resolved" if end else "firing", start, start, end),
    )


CONFIG = PageConfig(
    services=(ServiceEntry(name="api"), ServiceEntry(name="ghost")),
    groups=(
        GroupEntry(name="Web", hosts=("web-*",)),
        GroupEntry(name="Nobody", hosts=("none-*",)),
        GroupEntry(name="Quiet", hosts=("quiet-*",)),
    ),
)


def _days(bar_days: tuple[Day, ...]) -> dict[int, Day]:
    return {d.start: d for d in bar_days}


def test_day_starts_are_90_utc_midnights_ending_today() -> None:
    starts = day_starts(NOW)
    assert len(starts) == DAYS and starts[-1] == D3 and starts[0] == D3 - 89 * DAY_S


def test_a_group_day_is_host_hours_reported_over_host_hours_expected(tmp_path: Path) -> None:
    conn = _db(tmp_path)
    # web-1 from D1 00:00: all of D1, the first 12 hours of D2, nothing today.
    _host(
        conn, "web-1", [D1 + h * HOUR_S for h in range(24)] + [D2 + h * HOUR_S for h in range(12)]
    )
    # web-2 first reported at D2 18:00 and every hour since (today's 6 complete hours too).
    _host(
        conn,
        "web-2",
        [D2 + h * HOUR_S for h in range(18, 24)] + [D3 + h * HOUR_S for h in range(7)],
    )
    _host(conn, "quiet-1", [])  # known, never stored an hour
    bars = compute(conn, CONFIG, NOW, KEPT)
    web = _days(bars.groups["Web"].days)
    assert web[D1 - DAY_S].percent is None and web[D1 - DAY_S].state == "nodata"
    assert web[D1].percent == 100.0
    # D2: web-1 12 of 24 hours, web-2 6 of its 6 (counted from its first hour).
    assert web[D2].percent == pytest.approx(100 * 18 / 30)
    assert web[D2].state == "down"
    # Today: 6 complete hours each (the current hour does not count yet): web-2's 6 of 12.
    assert web[D3].percent == pytest.approx(50.0)
    assert bars.groups["Web"].percent == pytest.approx(100 * (24 + 18 + 6) / (24 + 30 + 12))
    # No host, or hosts without a stored hour: no data, never 100 %.
    for name in ("Nobody", "Quiet"):
        assert all(d.percent is None for d in bars.groups[name].days)
        assert bars.groups[name].percent is None


def test_a_service_day_is_its_reported_hours_minus_its_firing_alerts(tmp_path: Path) -> None:
    conn = _db(tmp_path)
    _host(
        conn, "web-1", [D1 + h * HOUR_S for h in range(24)] + [D2 + h * HOUR_S for h in range(12)]
    )
    _service(conn, "web-1", "api")
    _outage(conn, "web-1", "api", D1 + 6 * HOUR_S, D1 + 9 * HOUR_S)  # 3 h down on D1
    _outage(conn, "web-1", "api", D1 + 8 * HOUR_S, D1 + 10 * HOUR_S)  # overlaps: 1 h more
    _outage(conn, "web-1", "api", D2 + 11 * HOUR_S + 1800, None)  # still firing: 30 min of D2
    _outage(conn, "web-1", "other", D2, D2 + 6 * HOUR_S)  # another service's alert
    bars = compute(conn, CONFIG, NOW, KEPT)
    api = _days(bars.services["api"].days)
    assert api[D1].percent == pytest.approx(100 * 20 / 24)
    assert api[D2].percent == pytest.approx(100 * (12 - 0.5) / 12)
    assert api[D3].percent is None  # no stored hour today: the outage is not counted
    assert api[D1 - DAY_S].percent is None
    assert all(d.percent is None for d in bars.services["ghost"].days)  # no host runs it


def test_service_days_older_than_the_alert_history_are_no_data(tmp_path: Path) -> None:
    conn = _db(tmp_path)
    _host(
        conn, "web-1", [D1 + h * HOUR_S for h in range(24)] + [D2 + h * HOUR_S for h in range(24)]
    )
    _service(conn, "web-1", "api")
    bars = compute(conn, CONFIG, NOW, alerts_kept_s=DAY_S)  # alerts kept one day only
    api = _days(bars.services["api"].days)
    assert api[D1].percent is None  # alerts of D1 may have been pruned: not claimed as 100 %
    assert api[D2].covered_s == (24 - 7) * HOUR_S  # from the first whole hour still kept


def test_an_alert_rule_can_be_marked_public(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        "[rules.service]\npublic = true\n"
        "[[overrides]]\nrule = 'service'\nhost = 'lab-*'\npublic = false\n"
    )
    rules = load_rules(path, default_rules())
    assert rules.spec("service", "web-1", "nginx").public
    assert not rules.spec("service", "lab-1", "nginx").public
    assert not rules.spec("cpu", "web-1").public  # off unless a rule says so
    path.write_text("[rules.cpu]\npublic = 'maybe'\n")
    with pytest.raises(RulesError, match=r"rules\.cpu\.public"):
        load_rules(path, default_rules())
