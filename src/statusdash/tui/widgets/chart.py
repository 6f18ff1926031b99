"""Block-character time charts (one or two series stacked), readable at four rows tall."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from textual.content import Content
from textual.widget import Widget

from statusdash.safetext import one_line
from statusdash.schema import HistorySeries
from statusdash.tui import fmt

AXIS_W = 6
STYLES = ("$primary", "$warning")


@dataclass(frozen=True)
class Series:
    """One line of a chart: a short name (``↓``), values oldest first, and a fixed top if any."""

    name: str
    values: Sequence[float | None]
    top: float | None = None


def timeline(series: HistorySeries, field: str = "avg") -> list[float | None]:
    """The series as evenly spaced buckets from ``since`` to ``until``, ``None`` where empty."""
    if series.bucket_s <= 0:
        return [getattr(p, field) for p in series.points]
    span = (series.until - series.since).total_seconds()
    n = max(1, round(span / series.bucket_s))
    out: list[float | None] = [None] * n
    for p in series.points:
        # Bucket starts come back rounded to the microsecond: nudge before flooring.
        i = int((p.t - series.since).total_seconds() / series.bucket_s + 1e-6)
        if 0 <= i < n:
            out[i] = getattr(p, field)
    return out


@dataclass
class LiveSeries:
    """A history answer and the live values that came after it: one timeline that ends now.

    Buckets keep the server's grid (each point's time is the start of its bucket); a live value
    collected at or after the answer's ``until`` goes in the bucket its time falls in, and as
    time passes the window slides along that grid, so the chart never waits for a refetch.
    """

    history: HistorySeries
    live: dict[int, list[float]] = field(default_factory=dict)
    last: datetime | None = None

    def add(self, t: datetime, value: float | None) -> bool:
        """Note a live value collected at ``t``; False if it is not news (already in history,
        already noted, or no value)."""
        h = self.history
        if value is None or h.bucket_s <= 0 or t < h.until or (self.last and t <= self.last):
            return False
        self.last = t
        i = math.floor((t - h.since).total_seconds() / h.bucket_s + 1e-6)
        self.live.setdefault(i, []).append(value)
        return True

    def values(self, now: datetime) -> list[float | None]:
        """The window's buckets, oldest first, up to the one ``now`` falls in."""
        h = self.history
        base = timeline(h)
        if h.bucket_s <= 0:
            return base
        n = len(base)
        current = math.floor((now - h.since).total_seconds() / h.bucket_s + 1e-6)
        # The bucket ``now`` is in shows once it holds a value; until then the one before it
        # ends the window (no blank column each time a bucket begins).
        end = max(n - 1, current - 1, max(self.live, default=0))
        shift = end - (n - 1)
        out: list[float | None] = []
        for i in range(shift, shift + n):
            if i < n and base[i] is not None:
                out.append(base[i])
            elif i in self.live:
                vals = self.live[i]
                out.append(sum(vals) / len(vals))
            else:
                out.append(None)
        return out


def stats(values: Sequence[float | None]) -> tuple[float | None, float | None, float | None]:
    """(last, mean, max) over the known values: the footer's numbers, and the axis's max."""
    known = [v for v in values if v is not None]
    if not known:
        return None, None, None
    return known[-1], sum(known) / len(known), max(known)


def axis_top(s: Series, ceiling: Callable[[float], float] = fmt.nice_ceiling) -> float:
    """The value at the top of the series' band: its fixed top, or the step above the same
    ``max`` the footer shows (``stats``), so the axis never reads lower than the footer."""
    if s.top is not None:
        return s.top
    return ceiling(stats(s.values)[2] or 0.0)


def peaks(values: Sequence[float | None], width: int) -> list[float | None]:
    """``values`` in ``width`` columns; a column that holds several buckets shows the largest,
    so the tallest column is the footer's ``max`` (stretching repeats values)."""
    n = len(values)
    if width <= 0 or n == 0:
        return [None] * max(width, 0)
    if n <= width:
        return fmt.resample(values, width)
    out: list[float | None] = []
    for col in range(width):
        lo, hi = col * n // width, max(col * n // width + 1, (col + 1) * n // width)
        chunk = [v for v in values[lo:hi] if v is not None]
        out.append(max(chunk) if chunk else None)
    return out


def column_char(level8: float, row: int) -> str:
    """The block for ``row`` (0 at the bottom) of a column filled to ``level8`` eighths."""
    filled = level8 - row * 8
    if filled >= 8:
        return "█"
    if filled <= 0:
        return " "
    return fmt.BLOCKS[max(1, round(filled))] if round(filled) < 8 else "█"


def render_chart(
    series: Sequence[Series],
    width: int,
    height: int,
    label: Callable[[float], str],
    left: str = "",
    ceiling: Callable[[float], float] = fmt.nice_ceiling,
) -> list[Content]:
    """Lines of a chart ``width`` x ``height``: series stacked in bands, a time axis below."""
    if width <= AXIS_W + 2 or height < 2 or not series:
        return [Content("")] * max(height, 0)
    plot_w = width - AXIS_W
    rows = height - 1
    bands = [rows // len(series)] * len(series)
    bands[0] += rows - sum(bands)
    lines: list[Content] = []
    for idx, (s, band) in enumerate(zip(series, bands, strict=True)):
        cols = peaks(list(s.values), plot_w)
        top = axis_top(s, ceiling)
        style = STYLES[idx % len(STYLES)]
        levels = [None if v is None else min(max(v / top, 0.0), 1.0) * band * 8 for v in cols]
        for r in range(band - 1, -1, -1):
            if r == band - 1:
                axis = f"{s.name}{label(top)}"[: AXIS_W - 1].rjust(AXIS_W - 1) + "┤"
            elif r == 0 and band > 2:
                axis = "0".rjust(AXIS_W - 1) + "┤"
            else:
                axis = " " * (AXIS_W - 1) + "│"
            body = "".join(" " if lv is None else column_char(lv, r) for lv in levels)
            lines.append(Content.assemble((axis, "$text-muted"), (body, style)))
    right = "now"
    rule = "─" * max(plot_w - len(left) - len(right), 0)
    lines.append(
        Content.styled(" " * (AXIS_W - 1) + "└" + (left + rule + right)[:plot_w], "$text-muted")
    )
    return lines


class Chart(Widget):
    """A chart of one or two series over the host screen's range."""

    DEFAULT_CSS = """
    Chart { height: 1fr; min-height: 3; }
    """

    def __init__(
        self,
        label: Callable[[float], str] = lambda v: f"{v:.0f}",
        ceiling: Callable[[float], float] = fmt.nice_ceiling,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._label = label
        self._ceiling = ceiling
        self._series: list[Series] = []
        self._left = ""
        self._message = "loading…"

    def set_series(self, series: list[Series], left: str = "") -> None:
        self._series, self._left, self._message = series, left, ""
        self.refresh()

    def set_message(self, message: str) -> None:
        self._series, self._message = [], message
        self.refresh()

    def render(self) -> Content:
        region = self.content_region
        if not self._series:
            return Content.styled(one_line(self._message), "$text-muted")
        lines = render_chart(
            self._series, region.width, region.height, self._label, self._left, self._ceiling
        )
        return Content("\n").join(lines)
