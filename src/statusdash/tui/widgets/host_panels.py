"""Line formats of the host screen: facts header, disks, top processes, alerts and checks."""

from __future__ import annotations

from datetime import datetime

from textual.content import Content

from statusdash.schema import HealthStatus, HostDetail, HostSummary
from statusdash.tui import fmt
from statusdash.tui.widgets.lists import HEALTH_STYLE, alert_line

RANGES: tuple[str, ...] = ("15m", "1h", "24h", "7d", "30d")


def facts_line(
    host: str, summary: HostSummary | None, detail: HostDetail | None, seen_ago: float | None
) -> Content:
    """``▲ apricot (up) · seen 1s · uptime 2h · Debian 12 · 6.1.0 · x86_64 · 8 cores``.

    What an operator looks for first comes first, so a narrow terminal cuts the least useful.
    """
    parts: list[str] = []
    if seen_ago is not None:
        parts.append(f"seen {fmt.duration(seen_ago)}")
    if summary is not None and summary.uptime_s is not None:
        parts.append(f"uptime {fmt.duration(summary.uptime_s)}")
    system = detail.report.system if detail else None
    if system is not None:
        parts += [p for p in (system.os, system.kernel, system.arch) if p]
        parts.append(f"{system.cpu_count} cores")
    elif summary is not None and summary.os:
        parts.append(summary.os)
    marker = fmt.host_marker(summary) if summary else fmt.MARK_STALE
    status = summary.status.value if summary else "unknown"
    return Content.assemble(
        (f"{marker} {host}", "bold"), f" ({status})", " · " if parts else "", " · ".join(parts)
    )


def range_line(current: str) -> Content:
    """``15m [1h] 24h 7d 30d``: the charts' range, the current one marked."""
    items: list[Content | str | tuple[str, str]] = []
    for r in RANGES:
        items.append((f"[{r}]", "bold reverse") if r == current else f" {r} ")
    return Content.assemble(*items)


def disk_lines(detail: HostDetail, threshold: float) -> list[Content]:
    """``/      93% ! 465G`` per real filesystem, worst first; swap last."""
    out: list[Content] = []
    mount_w = max((len(d.mount) for d in detail.report.disks), default=4)
    mount_w = min(max(mount_w, 4), 16)
    for d in sorted(detail.report.disks, key=lambda d: -d.percent):
        lvl = fmt.level(d.percent, threshold)
        style = {"crit": "$error", "warn": "$warning"}.get(lvl, "")
        mark = fmt.MARK_OVER if lvl == "crit" else " "
        mount = d.mount if len(d.mount) <= mount_w else d.mount[: mount_w - 1] + "…"
        out.append(
            Content.assemble(
                mount.ljust(mount_w),
                " ",
                (fmt.pct(d.percent).rjust(4) + mark, style),
                " ",
                fmt.scaled(d.total).rjust(5),
                (f" {d.fstype}" if d.fstype else "", "$text-muted"),
            )
        )
    swap = detail.report.swap
    if swap is not None and swap.total:
        out.append(
            Content.assemble(
                "swap".ljust(mount_w),
                " ",
                fmt.pct(swap.percent).rjust(4),
                "  ",
                fmt.scaled(swap.total).rjust(5),
            )
        )
    return out


def process_lines(detail: HostDetail) -> list[Content]:
    """``postgres  312%  2.1G 812`` (CPU of one core, resident memory, pid), busiest first."""
    procs = detail.report.processes
    if procs is None:
        return []
    name_w = min(max((len(p.name) for p in procs.top_cpu), default=4), 16)
    out = []
    for p in procs.top_cpu:
        name = p.name if len(p.name) <= name_w else p.name[: name_w - 1] + "…"
        out.append(
            Content.assemble(
                name.ljust(name_w),
                " ",
                f"{p.cpu_percent:4.0f}%",
                " ",
                fmt.scaled(p.rss).rjust(5),
                (f" {p.pid}", "$text-muted"),
            )
        )
    return out


def alerts_and_checks(detail: HostDetail, now: datetime) -> list[Content]:
    """The host's active alerts, then the results of its service checks."""
    out = [alert_line(a, now, host=False) for a in detail.alerts if a.state != "resolved"]
    for s in detail.report.services:
        latency = f" {s.latency_ms:.0f}ms" if s.latency_ms is not None else ""
        detail_text = f" {s.detail}" if s.detail and s.status is not HealthStatus.healthy else ""
        out.append(
            Content.assemble(
                (fmt.health_marker(s.status), HEALTH_STYLE.get(s.status, "")),
                " ",
                s.name,
                " ",
                (s.status.value, HEALTH_STYLE.get(s.status, "")),
                (f"{latency}{detail_text}", "$text-muted"),
            )
        )
    return out
