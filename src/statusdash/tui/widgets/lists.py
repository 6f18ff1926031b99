"""Compact alert and service lists for the fleet screen's lower panels, and their line formats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from statusdash.schema import AlertPublic, AlertState, HealthStatus, ServiceHealth
from statusdash.tui import fmt

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


def alert_line(a: AlertPublic, now: datetime, host: bool = True) -> Content:
    """``▲ apricot  cpu 97% > 90% for 2m`` (the server's message, then how long)."""
    mark = ALERT_MARK.get(a.state, "▲")
    ack = " ✓ack" if a.acked_at else ""
    return Content.assemble(
        (mark, ALERT_STYLE.get(a.state, "")),
        " ",
        (a.host + "  " if host else "", "bold"),
        a.message,
        (f" for {alert_since(a, now)}{ack}", "$text-muted"),
    )


def metrics_summary(metrics: dict[str, Any], limit: int = 2) -> str:
    """The first few scalar metrics of a service, ``queue 42 workers 3``."""
    parts: list[str] = []
    for k, v in metrics.items():
        if isinstance(v, bool | int | float | str) and len(parts) < limit:
            parts.append(f"{k} {v}")
    return " ".join(parts)


def service_line(s: ServiceHealth, name_w: int = 18) -> Content:
    """``● image-generator  healthy    queue 42    12:00:03``."""
    detail = s.error if s.status is HealthStatus.unhealthy and s.error else ""
    detail = detail or metrics_summary(s.metrics)
    name = s.name if not s.host else f"{s.name}@{s.host}"
    return Content.assemble(
        (fmt.health_marker(s.status), HEALTH_STYLE.get(s.status, "")),
        " ",
        name.ljust(name_w),
        " ",
        (s.status.value.ljust(9), HEALTH_STYLE.get(s.status, "")),
        " ",
        detail,
        ("  " + fmt.clock(s.last_check), "$text-muted"),
    )


class LinesPanel(Widget):
    """A few formatted lines, cut to the panel; an empty message when there are none."""

    DEFAULT_CSS = """
    LinesPanel { height: 1fr; }
    """

    def __init__(self, empty: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[Content] = []
        self._empty = empty

    def set_lines(self, lines: list[Content], empty: str | None = None) -> None:
        """Show ``lines``; ``empty`` replaces the message shown when there are none."""
        self._lines = lines
        if empty is not None:
            self._empty = empty
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(len(self._lines), 1)

    def render(self) -> Content:
        width = self.content_region.width or 80
        if not self._lines:
            return Content.styled(self._empty, "$text-muted")
        height = self.content_region.height or len(self._lines)
        lines = self._lines
        if len(lines) > height > 0:
            more = len(lines) - height + 1
            lines = [*lines[: height - 1], Content.styled(f"… {more} more", "$text-muted")]
        return Content("\n").join(line.truncate(width, ellipsis=True) for line in lines)
