"""Compact alert and service lists for the fleet screen's lower panels, and their line formats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from statusdash.safetext import one_line
from statusdash.schema import AlertPublic, AlertState, ServiceHealth
from statusdash.tui import fmt
from statusdash.tui.widgets.columns import Cell, Column, render_rows, table_width
from statusdash.wire import HealthStatus

ALERT_MARK = {AlertState.firing: "▲", AlertState.pending: "△", AlertState.resolved: "✓"}
ALERT_STYLE = {
    AlertState.firing: "$error",
    AlertState.pending: "$warning",
    AlertState.resolved: "$text-muted",
}
HEALTH_STYLE = {
    HealthStatus.healthy: "$success",
    HealthStatus.unhealthy: "$error",
    HealthStatus.unknown: "$warning",
}


def alert_since(a: AlertPublic, now: datetime) -> str:
    """How long the condition has held: from when it first held (``started_at``, the start of
    the pending time, which FOR counts from), to now, or to when it resolved."""
    end = a.resolved_at or now
    return fmt.duration(max(0.0, (end - a.started_at).total_seconds()))


def alert_text(a: AlertPublic, short: bool = False) -> str:
    """The server's message without the host it starts with (shown beside it anyway).

    ``short`` also drops the trailing ``(alert at 90%, clears below 85%)`` for compact lists.
    """
    text = a.message.removeprefix(f"{a.host}: ")
    if short and text.endswith(")") and " (" in text:
        text = text[: text.rindex(" (")]
    return text


PERCENT_RULES = ("cpu", "memory", "disk")


def alert_value(a: AlertPublic) -> str:
    """``97% ≥ 90%`` for the percentage rules; empty for the others (their message says it)."""
    if a.value is None or a.rule not in PERCENT_RULES:
        return ""
    if a.threshold is None:
        return f"{a.value:.0f}%"
    return f"{a.value:.0f}% ≥ {a.threshold:.0f}%"


def alert_what(a: AlertPublic) -> str:
    """What the alert is about: ``cpu``, ``disk /data``, ``service nginx``, an event's name."""
    if a.rule == "event":
        return a.subject or "event"
    return f"{a.rule} {a.subject}" if a.subject else a.rule


def alert_current(a: AlertPublic) -> str:
    """The one value of the row: the latest the server judged (for a resolved alert, the one
    that resolved it); empty for rules without a number (their detail says what happened)."""
    if a.value is None or a.rule not in PERCENT_RULES:
        return ""
    return f"{a.value:.0f}%"


def alert_limit(a: AlertPublic) -> str:
    """The threshold the alert was judged against: ``≥ 90%``."""
    if a.threshold is None or a.rule not in PERCENT_RULES:
        return ""
    return f"≥ {a.threshold:.0f}%"


def alert_when(a: AlertPublic, now: datetime) -> str:
    """``for 2m`` while open (from when the condition first held); ``resolved 3m ago after
    5m`` once resolved, so nothing claims a resolved condition still holds."""
    if a.resolved_at is not None:
        ago = fmt.duration(max(0.0, (now - a.resolved_at).total_seconds()))
        return f"resolved {ago} ago after {alert_since(a, now)}"
    return f"for {alert_since(a, now)}"


def alert_detail(a: AlertPublic) -> str:
    """The message where it adds to the columns (offline, services, events), never a second
    value; a resolved alert's message is what *was* true."""
    if a.rule in PERCENT_RULES:
        return ""
    text = alert_text(a, short=True)
    return f"was: {text}" if a.state == "resolved" else text


def silenced_by(a: AlertPublic, silences: list[dict[str, Any]], now: datetime) -> bool:
    """True if a silence in force matches the alert as the server matches it: host glob, rule,
    subject glob (an unset field matches anything)."""
    for s in silences:
        expires = s.get("expires_at")
        if isinstance(expires, str):
            try:
                if datetime.fromisoformat(expires) <= now:
                    continue
            except ValueError:
                pass
        host, rule, subject = s.get("host"), s.get("rule"), s.get("subject")
        if host and not fnmatchcase(a.host, str(host)):
            continue
        if rule and rule != a.rule:
            continue
        if subject and not fnmatchcase(a.subject, str(subject)):
            continue
        return True
    return False


def alert_marks(a: AlertPublic, silenced: bool) -> str:
    """``firing ✓ack ⊘silenced``: the state, then what people did about it."""
    text = a.state.value
    if a.acked_at is not None:
        text += f" ✓{a.acked_by or 'ack'}"
    if silenced and a.state != "resolved":
        text += " ⊘silenced"
    return text


ALERT_COLUMNS = (
    Column(),
    Column(max_w=24, style="bold"),
    Column(flex=True, min_w=12),
    Column(style="$text-muted", drop=1),
)


def alert_row(a: AlertPublic, now: datetime) -> list[Cell]:
    """``▲ apricot  CPU at 97%  for 2m`` as cells of ``ALERT_COLUMNS``."""
    ack = " ✓ack" if a.acked_at else ""
    return [
        (ALERT_MARK.get(a.state, "▲"), ALERT_STYLE.get(a.state, "")),
        a.host,
        alert_text(a, short=True),
        f"{alert_when(a, now)}{ack}",
    ]


_SKIP_METRICS = {"kind", "status", "detail", "latencyMs", "latency_ms"}


def metrics_summary(metrics: dict[str, Any], limit: int = 2) -> str:
    """The check's own detail and latency, then a few scalar metrics: ``HTTP 200 · 3ms``."""
    parts: list[str] = []
    detail = metrics.get("detail")
    if isinstance(detail, str) and detail:
        parts.append(detail)
    latency = metrics.get("latencyMs", metrics.get("latency_ms"))
    if isinstance(latency, int | float) and not isinstance(latency, bool):
        parts.append(f"{latency:.0f}ms")
    extra = 0
    for k, v in metrics.items():
        if k in _SKIP_METRICS or not isinstance(v, bool | int | float | str) or extra >= limit:
            continue
        parts.append(f"{k} {v}")
        extra += 1
    return " · ".join(parts)


def service_detail(s: ServiceHealth) -> str:
    """Why a service is unhealthy (or why its check cannot run), else what it last measured."""
    if s.status is not HealthStatus.healthy and s.error:
        return s.error
    return metrics_summary(s.metrics)


def check_time(s: ServiceHealth) -> datetime | None:
    """When the service's check ran, as the API says: the one place that reads the field."""
    return s.last_check


def checked_ago(s: ServiceHealth, now: datetime) -> str:
    """``57s ago``: the age of the check itself (not of the message that carried it)."""
    ran = check_time(s)
    return fmt.since_text(None if ran is None else max(0.0, (now - ran).total_seconds()))


def health_cell(status: HealthStatus) -> tuple[str, str]:
    """The status word in its colour: ``healthy``, ``unhealthy`` or ``unknown`` (a check that
    cannot run, or no news), the same words everywhere."""
    return (status.value, HEALTH_STYLE.get(status, ""))


SERVICE_COLUMNS = (
    Column(),
    Column(max_w=24),
    Column(max_w=20, style="$text-muted", drop=2),
    Column(drop=3),
    Column(flex=True, min_w=10),
    Column(right=True, style="$text-muted", drop=1),
)


def service_row(s: ServiceHealth, now: datetime) -> list[Cell]:
    """``● image-generator  platform-vps  healthy  queue 42  57s`` as ``SERVICE_COLUMNS`` cells."""
    style = HEALTH_STYLE.get(s.status, "")
    ran = check_time(s)
    age = fmt.duration(max(0.0, (now - ran).total_seconds())) if ran else "-"
    return [
        (fmt.health_marker(s.status), style),
        s.name,
        s.host or "",
        health_cell(s.status),
        service_detail(s),
        age,
    ]


class LinesPanel(Widget):
    """A few formatted lines, or a small table laid out to the width; a message when empty."""

    DEFAULT_CSS = """
    LinesPanel { height: 1fr; }
    """

    def __init__(self, empty: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[Content] = []
        self._table: tuple[Sequence[Column], list[list[Cell]], bool, int] | None = None
        self._empty = empty

    def set_lines(self, lines: list[Content], empty: str | None = None) -> None:
        """Show ``lines``; ``empty`` replaces the message shown when there are none."""
        self._lines, self._table = lines, None
        if empty is not None:
            self._empty = empty
        self.refresh(layout=True)

    def set_table(
        self,
        columns: Sequence[Column],
        rows: list[list[Cell]],
        *,
        header: bool = False,
        gap: int = 1,
        empty: str | None = None,
    ) -> None:
        """Show ``rows`` in ``columns``, laid out again whenever the width changes."""
        self._lines, self._table = [], (columns, rows, header, gap) if rows else None
        if empty is not None:
            self._empty = empty
        self.refresh(layout=True)

    @property
    def line_count(self) -> int:
        """Lines wanted to show everything (at least one, for the empty message)."""
        if self._table is not None:
            _cols, rows, header, _gap = self._table
            return len(rows) + (1 if header else 0)
        return max(len(self._lines), 1)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.line_count

    def get_content_width(self, container: Size, viewport: Size) -> int:
        if self._table is not None:
            columns, rows, header, gap = self._table
            return table_width(columns, rows, gap=gap, header=header)
        if not self._lines:
            return len(one_line(self._empty))
        return max(line.cell_length for line in self._lines)

    def render(self) -> Content:
        width = self.content_region.width or 80
        lines = self._lines
        if self._table is not None:
            columns, rows, header, gap = self._table
            lines = render_rows(columns, rows, width, gap=gap, header=header)
        if not lines:
            return Content.styled(one_line(self._empty), "$text-muted")
        height = self.content_region.height or len(lines)
        if len(lines) > height > 0:
            more = len(lines) - height + 1
            lines = [*lines[: height - 1], Content.styled(f"… {more} more", "$text-muted")]
        return Content("\n").join(line.truncate(width, ellipsis=True) for line in lines)
