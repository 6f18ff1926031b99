"""Line formats of the host screen: facts header, disks, top processes, alerts and checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.content import Content

from statusdash import units
from statusdash.safetext import one_line
from statusdash.schema import AlertPublic, HostDetail, HostStatus, HostSummary
from statusdash.tui import fmt
from statusdash.tui.widgets.columns import Cell, Column
from statusdash.tui.widgets.lists import (
    ALERT_MARK,
    ALERT_STYLE,
    HEALTH_STYLE,
    alert_since,
    alert_text,
)
from statusdash.wire import HealthStatus

RANGES: tuple[str, ...] = ("15m", "1h", "24h", "7d", "30d")


def facts_line(
    host: str,
    summary: HostSummary | None,
    detail: HostDetail | None,
    seen_ago: float | None,
    width: int = 0,
    note: Content | None = None,
) -> Content:
    """``▲ apricot (up) · seen 1s · uptime 2h · Debian 12 · 6.1.0 · x86_64 · 8 cores``.

    What an operator looks for first comes first: ``note`` (a problem) right after the host,
    then as many whole facts as fit in ``width`` (0: all of them).
    """
    parts: list[str] = []
    current = summary is not None and summary.status is HostStatus.up
    if seen_ago is not None:
        parts.append(f"seen {fmt.duration(seen_ago)}")
    if summary is not None and summary.uptime_s is not None:
        # A host that stopped reporting is not "up 2h": say it was, at its last report.
        label = "uptime" if current else "was up"
        parts.append(f"{label} {fmt.duration(summary.uptime_s)}")
    system = detail.report.system if detail else None
    if system is not None:
        parts += [one_line(p) for p in (system.os, system.kernel, system.arch) if p]
        parts.append(units.count(system.cpu_count, "core"))
    elif summary is not None and summary.os:
        parts.append(one_line(summary.os))
    marker = fmt.host_marker(summary) if summary else fmt.MARK_STALE
    status = summary.status.value if summary else "unknown"
    if summary is not None and not current and seen_ago is not None:
        status += f" {fmt.duration(seen_ago)}"  # ``down 3m``: since its last report
    line = Content.assemble(
        (f"{marker} {one_line(host)}", "bold"),
        (f" ({status})", "" if current or summary is None else "bold $warning"),
    )
    if note is not None:
        line = Content.assemble(line, "  ", note)
    for part in parts:
        if width and line.cell_length + 3 + len(part) > width:
            break
        line = Content.assemble(line, " · ", part)
    return line


def range_line(current: str) -> Content:
    """``15m [1h] 24h 7d 30d``: the charts' range, the current one marked."""
    items: list[Content | str | tuple[str, str]] = []
    for r in RANGES:
        items.append((f"[{r}]", "bold reverse") if r == current else f" {r} ")
    return Content.assemble(*items)


DISK_COLUMNS = (
    Column("MOUNT", flex=True, min_w=4, max_w=24),
    Column("USE", right=True),
    Column("USED/SIZE", right=True, drop=2),
    Column("FS", style="$text-muted", drop=3),
)


def disk_rows(
    detail: HostDetail, threshold: float | Callable[[str, float], str]
) -> list[list[Cell]]:
    """``/  93%!  433G/466G  ext4`` per filesystem, fullest first; swap last.

    ``threshold`` is one for every mount, or ``judge(mount, percent)`` giving each mount's
    level as the server judges it (its rules for that mount, its open alerts); a host that
    is not up has its values dimmed.
    """
    current = detail.summary.status is HostStatus.up
    rows: list[list[Cell]] = []
    for d in sorted(detail.report.disks, key=lambda d: -d.percent):
        if callable(threshold):
            lvl = threshold(d.mount, d.percent)
        else:
            lvl = fmt.level(d.percent, threshold)
        style = {"crit": "$error", "warn": "$warning"}.get(lvl, "") if current else ""
        if not current:
            style = "$error" if lvl == "crit" else "$text-muted"
        mark = fmt.MARK_OVER if lvl == "crit" else " "
        text = units.percent(d.percent) + mark
        use: Cell = (text, style) if style else text
        rows.append(
            [d.mount, use, _dim(f"{units.size(d.used)}/{units.size(d.total)}", current), d.fstype]
        )
    swap = detail.report.swap
    if swap is not None and swap.total:
        used = f"{units.size(swap.used)}/{units.size(swap.total)}"
        rows.append(
            ["swap", _dim(units.percent(swap.percent) + " ", current), _dim(used, current), ""]
        )
    return rows


def _dim(text: str, current: bool) -> Cell:
    """``text`` as it is for a host that reports, muted for one that is not current."""
    return text if current else (text, "$text-muted")


PROCESS_COLUMNS = (
    Column("NAME", flex=True, min_w=8, max_w=20),
    Column("CPU", right=True),
    Column("RSS", right=True),
    Column("PID", right=True, drop=1),
    Column("USER", style="$text-muted", drop=2, max_w=12),
)


def process_rows(detail: HostDetail) -> list[list[Cell]]:
    """``postgres  312%  2.1G  812  postgres``: busiest first (CPU of one core, resident memory)."""
    procs = detail.report.processes
    if procs is None:
        return []
    current = detail.summary.status is HostStatus.up
    return [
        [
            _dim(p.name, current),
            _dim(f"{p.cpu_percent:.0f}%", current),
            _dim(units.size(p.rss), current),
            _dim(str(p.pid), current),
            p.user or "",
        ]
        for p in procs.top_cpu
    ]


CHECK_COLUMNS = (
    Column(),
    Column(flex=True, min_w=10),
    Column(style="$text-muted", drop=1),
)


def alerts_and_checks(detail: HostDetail, now: datetime) -> list[list[Cell]]:
    """The host's active alerts (``▲ CPU at 97%  for 2m``), then its service checks.

    An alert about a service that has a check here is shown on the check's line (``▲ postgres
    unhealthy: refused  for 2m``) rather than twice.
    """
    active = [a for a in detail.alerts if a.state != "resolved"]
    checks = {s.name for s in detail.report.services}
    on_check = {a.subject: a for a in active if a.rule == "service" and a.subject in checks}
    rows: list[list[Cell]] = []
    for a in active:
        if a.subject not in on_check or on_check[a.subject] is not a:
            rows.append([_alert_mark(a), alert_text(a, short=True), _alert_tail(a, now)])
    # Failing checks first; Python's sort keeps services.yaml's order among equals.
    for s in sorted(detail.report.services, key=lambda s: s.status is HealthStatus.healthy):
        text = s.name
        if s.status is not HealthStatus.healthy:
            text += f" {s.status.value}" + (f": {s.detail}" if s.detail else "")
        latency = f"{s.latency_ms:.0f}ms" if s.latency_ms is not None else ""
        alert = on_check.get(s.name)
        if alert is not None:
            rows.append([_alert_mark(alert), text, _alert_tail(alert, now)])
        else:
            rows.append(
                [(fmt.health_marker(s.status), HEALTH_STYLE.get(s.status, "")), text, latency]
            )
    return rows


def _alert_mark(a: AlertPublic) -> Cell:
    return (ALERT_MARK.get(a.state, "▲"), ALERT_STYLE.get(a.state, ""))


def _alert_tail(a: AlertPublic, now: datetime) -> str:
    return f"for {alert_since(a, now)}" + (" ✓ack" if a.acked_at else "")
