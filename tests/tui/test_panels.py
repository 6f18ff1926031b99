"""The panels' line formats: columns that give way whole, alert and service texts."""

from __future__ import annotations

from datetime import timedelta

from textual.content import Content

from statusdash.schema import AlertPublic, AlertState
from statusdash.tui import fmt
from statusdash.tui.widgets.columns import Column, layout, render_rows
from statusdash.tui.widgets.host_panels import (
    PROCESS_COLUMNS,
    alerts_and_checks,
    facts_line,
    process_rows,
)
from statusdash.tui.widgets.lists import alert_text, alert_value, metrics_summary
from statusdash.wire import HealthStatus, ServiceCheckResult
from tests.tui.fleetdata import NOW, detail, frames

COLS = (
    Column("NAME", flex=True, min_w=4),
    Column("CPU", right=True),
    Column("PID", right=True, drop=1),
    Column("USER", drop=2),
)
ROWS: list[list[str | tuple[str, str]]] = [
    ["postgres", "312%", "10712", "postgres"],
    ["nginx", "3%", "97", "www-data"],
]


def test_columns_give_way_whole_in_order() -> None:
    assert layout(COLS, ROWS, 40) == [8, 4, 5, 8]  # everything fits
    assert layout(COLS, ROWS, 20) == [8, 4, 5, 0]  # the user goes first
    assert layout(COLS, ROWS, 15) == [4, 4, 5, 0]  # then the name shortens, down to 4
    assert layout(COLS, ROWS, 13) == [8, 4, 0, 0]  # then the pid goes; the name takes it back
    lines = [c.plain for c in render_rows(COLS, ROWS, 15, header=True)]
    assert lines == ["NAME  CPU   PID", "pos… 312% 10712", "ngi…   3%    97"]
    assert all("107…" not in line for line in lines)


def test_process_rows_never_cut_a_number() -> None:
    d = detail(next(h for h in frames(1)[0] if h.host == "apricot"))
    rows = process_rows(d)
    for width in range(14, 44):
        lines = render_rows(PROCESS_COLUMNS, rows, width, header=True)
        assert all(line.cell_length <= width for line in lines), width
        for line in lines[1:]:
            words = line.plain.split()
            assert words[1].endswith("%") and words[2][-1] in "KMG", (width, line.plain)
            assert not any("…" in w and any(ch.isdigit() for ch in w) for w in words), width


def _alert(rule: str, subject: str, message: str, value: float | None = None) -> AlertPublic:
    t = NOW - timedelta(minutes=3)
    return AlertPublic(
        id=1,
        rule=rule,
        host="db-1",
        subject=subject,
        state=AlertState.firing,
        value=value,
        threshold=90 if value is not None else None,
        message=message,
        started_at=t,
        fired_at=t,
    )


def test_alert_texts_drop_the_host_and_say_units() -> None:
    cpu = _alert("cpu", "", "db-1: CPU at 97% (alert at 90%, clears below 85%)", 97)
    assert alert_text(cpu) == "CPU at 97% (alert at 90%, clears below 85%)"
    assert alert_text(cpu, short=True) == "CPU at 97%"
    assert alert_value(cpu) == "97% ≥ 90%"
    service = _alert("service", "pg", "db-1: service pg unhealthy: refused", 1)
    assert alert_value(service) == "" and alert_text(service, short=True).endswith("refused")


def test_a_service_alert_shows_on_its_check_line() -> None:
    d = detail(next(h for h in frames(1)[0] if h.host == "apricot"))
    backup = _alert("service", "backup", "apricot: service backup unhealthy: failed")
    backup.host = "apricot"
    d = d.model_copy(update={"alerts": [*d.alerts, backup]})
    rows = alerts_and_checks(d, NOW)
    texts = [(r[0][0] if isinstance(r[0], tuple) else r[0], r[1], r[2]) for r in rows]
    assert texts == [
        ("▲", "cpu 97% > 90%", "for 2m"),
        ("▲", "disk / 93% > 90%", "for 42m"),  # from when the condition first held
        ("▲", "backup unhealthy: failed", "for 3m"),  # failing checks first, with the alert
        (fmt.MARK_HEALTHY, "nginx", "3ms"),
    ]
    unknown = ServiceCheckResult(name="x", kind="tcp", status=HealthStatus.unknown, checked_at=NOW)
    d.report.services.append(unknown)
    assert any(r[1] == "x unknown" for r in alerts_and_checks(d, NOW))


def test_metrics_summary_skips_what_the_line_already_says() -> None:
    metrics = {"kind": "http", "status": "healthy", "latencyMs": 2.8, "detail": "HTTP 200"}
    assert metrics_summary(metrics) == "HTTP 200 · 3ms"
    assert metrics_summary({"queue": 42, "workers": 3, "x": [1]}) == "queue 42 · workers 3"


def test_rate_pair_keeps_the_slash_in_one_column() -> None:
    assert fmt.rate_pair(88 * 1024, 91 * 1024) == " 88K/91K "
    assert fmt.rate_pair(1.2 * 2**20, 340 * 1024) == "1.2M/340K"
    assert fmt.rate_pair(None, None) == "   -/-   "


def test_facts_keep_whole_parts_and_put_a_problem_first() -> None:
    summary = next(h for h in frames(1)[0] if h.host == "apricot")
    d = detail(summary)
    full = facts_line("apricot", summary, d, 1.0).plain
    assert full.endswith("x86_64 · 8 cores")
    short = facts_line("apricot", summary, d, 1.0, width=50).plain
    assert len(short) <= 50 and short.endswith("uptime 2h") and "Ubuntu" not in short
    note = Content.styled("(stale: server unreachable)", "$warning")
    stale = facts_line("apricot", summary, d, 1.0, width=60, note=note).plain
    assert stale.startswith("▲ apricot (up)  (stale: server unreachable) · seen 1s")
