"""Compact alert and service lists for the fleet screen's lower panels, and their line formats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
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
    start = a.fired_at or a.started_at
    end = a.resolved_at or now
    return fmt.duration((end - start).total_seconds())


def alert_text(a: AlertPublic, short: bool = False) -> str:
    """The server's message without the host it starts with (shown beside it anyway).

    ``short`` also drops the trailing ``(alert at 90%, clears below 85%)`` for compact lists.
    """
    text = a.message.removeprefix(f"{a.host}: ")
    if short and text.endswith(")") and " (" in text:
        text = text[: text.rindex(" (")]
    return text


def alert_value(a: AlertPublic) -> str:
    """``97% ≥ 90%`` for the percentage rules; empty for the others (their message says it)."""
    if a.value is None or a.rule not in ("cpu", "memory", "disk"):
        return ""
    if a.threshold is None:
        return f"{a.value:.0f}%"
    return f"{a.value:.0f}% ≥ {a.threshold:.0f}%"


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
        f"for {alert_since(a, now)}{ack}",
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
    """Why a service is unhealthy, else what its last check measured."""
    if s.status is HealthStatus.unhealthy and s.error:
        return s.error
    return metrics_summary(s.metrics)


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
    age = fmt.duration((now - s.last_check).total_seconds()) if s.last_check else "-"
    return [
        (fmt.health_marker(s.status), style),
        s.name,
        s.host or "",
        (s.status.value, style),
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
