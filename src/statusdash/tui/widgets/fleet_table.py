"""The fleet table: a Line API widget that draws only the visible rows of a large fleet.

A DataTable re-measures and re-caches cells on every update; with hundreds of hosts changing every
second, drawing the rows we can see from the model is far cheaper and keeps full control of the
markers, the sparkline and the threshold symbols.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from statusdash import units
from statusdash.safetext import one_line
from statusdash.schema import HostStatus
from statusdash.tui import fmt
from statusdash.tui.grouping import Line, Section
from statusdash.tui.model import SPARK_LEN, FleetModel, HostRow, SortKey
from statusdash.tui.widgets.rules_feed import RulesFeed


@dataclass(frozen=True)
class Col:
    key: SortKey
    label: str
    width: int
    right: bool = True


# Fixed columns after HOST and CPU, sized to their widest value: ``100%!``, ``0.42``,
# ``1.2M/340K``, ``41d``, ``34s``.
FIXED: tuple[Col, ...] = (
    Col(SortKey.mem, "MEM", 5),
    Col(SortKey.disk, "DISK", 5),
    Col(SortKey.load, "LOAD", 4),
    Col(SortKey.net, "NET ↓/↑", 9, right=False),
    Col(SortKey.up, "UP", 4),
    Col(SortKey.seen, "SEEN", 4),
)
LABELS = {c.key: c.label for c in FIXED} | {
    SortKey.status: "",
    SortKey.host: "HOST",
    SortKey.cpu: "CPU",
    SortKey.os: "OS",
}
GAUGES = {SortKey.cpu, SortKey.mem, SortKey.disk}  # ``97%!``: the label ends over the ``%``
_PLAIN = Style()  # every segment carries a style: the NO_COLOR filter needs one
MARK_W = 1
CPU_W = 5
HOST_MIN, HOST_MAX = 8, 40
SPARK_MIN, SPARK_MAX = 8, SPARK_LEN
GAP_MAX = 3
OS_MIN = 12


@dataclass(frozen=True)
class Layout:
    host: int
    spark: int
    gap: int
    # (key, x, width) of every cell, for drawing the header and mapping clicks to columns.
    cells: tuple[tuple[SortKey, int, int], ...]

    def cell(self, key: SortKey) -> tuple[int, int] | None:
        """(x, width) of the column ``key``, or None when it is not shown."""
        return next(((x, w) for k, x, w in self.cells if k == key), None)


def make_layout(width: int, longest_host: int) -> Layout:
    """Column widths for ``width`` cells, so the table reads the same at 80 and at 200 columns.

    Every column but HOST has a fixed width and the sparkline sits right after the CPU %. A
    narrow table shortens the sparkline, then HOST, then drops the sparkline; a wide one widens
    the gaps (to 3), gives HOST room for its longest name, and shows the hosts' OS in the rest.
    """
    fixed = MARK_W + CPU_W + sum(c.width for c in FIXED)
    ngaps = 1 + len(FIXED)  # host|cpu, cpu|mem ... up|seen: the gaps that may widen
    natural = min(max(longest_host, HOST_MIN), HOST_MAX)
    room = width - fixed - 1 - ngaps  # 1: the marker's gap, never widened
    host = min(natural, max(room - SPARK_MIN - 1, HOST_MIN))
    spark = min(SPARK_MAX, room - host - 1)  # 1: between the CPU % and the sparkline
    if spark < SPARK_MIN:
        spark = 0
        host = max(HOST_MIN, min(natural, room))
    extra = room - host - (spark + 1 if spark else 0)
    gap = 1
    if extra > 0:
        gap = min(GAP_MAX, 1 + extra // ngaps)
        extra -= (gap - 1) * ngaps
    os_w = extra - gap if extra - gap >= OS_MIN else 0
    if not os_w:
        host += max(extra, 0)
    cells: list[tuple[SortKey, int, int]] = [(SortKey.status, 0, MARK_W)]
    x = MARK_W + 1
    for key, w in (
        (SortKey.host, host),
        (SortKey.cpu, CPU_W + (spark + 1 if spark else 0)),
        *((c.key, c.width) for c in FIXED),
        *(((SortKey.os, os_w),) if os_w else ()),
    ):
        cells.append((key, x, w))
        x += w + gap
    return Layout(host, spark, gap, tuple(cells))


class FleetTable(RulesFeed, ScrollView, can_focus=True, inherit_bindings=False):
    """One row per host; ``enter`` opens it, a header click sorts by that column.

    Flags (``!`` and colours) are the server's: its rules in force for the host (and the
    fullest mount), and its open alerts. A down or stale host's values are dimmed; a down
    host's UP reads ``down`` (SEEN says since when) rather than an uptime frozen as if alive.
    """

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First host", show=False),
        Binding("end,G", "jump(-1)", "Last host", show=False),
        Binding("enter", "open", "Open host"),
    ]

    COMPONENT_CLASSES = {
        "fleet-table--header",
        "fleet-table--sorted",
        "fleet-table--cursor",
        "fleet-table--up",
        "fleet-table--stale",
        "fleet-table--down",
        "fleet-table--alert",
        "fleet-table--warn",
        "fleet-table--crit",
        "fleet-table--dim",
        "fleet-table--spark",
        "fleet-table--cursor-spark",
    }

    @dataclass
    class Opened(Message):
        """The user chose a host."""

        host: str

    @dataclass
    class SortClicked(Message):
        """The user clicked a column header."""

        key: SortKey

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._model: FleetModel | None = None
        self._view: list[str] = []
        self._lines: list[Line] = []  # the hosts of _view, with section rows when grouping
        self._now: datetime | None = None
        self._stale = False
        self.selected: str | None = None
        self.cursor = 0
        self._layout: Layout | None = None
        self._layout_key: tuple[int, int] = (-1, -1)
        self.empty_message = "waiting for the first answer…"

    # --- data ------------------------------------------------------------------------------
    def show(self, model: FleetModel, now: datetime) -> None:
        """Redraw from ``model`` at time ``now``; the cursor follows the selected host."""
        self._model = model
        self._view = model.view()
        self._lines = model.lines()
        self._now = now
        self._stale = model.data_stale(now)
        if self.selected in model.rows and self.selected in self._view:
            self.cursor = self._lines.index(self.selected)
        else:
            self.cursor = self._host_near(min(self.cursor, max(len(self._lines) - 1, 0)), 1)
            line = self._lines[self.cursor] if self._lines else None
            self.selected = line if isinstance(line, str) else None
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._lines) + 1)
        self._scroll_cursor_into_view()
        self.refresh()

    @property
    def rows_shown(self) -> list[str]:
        return list(self._view)

    # --- layout ----------------------------------------------------------------------------
    def layout_for(self, width: int) -> Layout:
        longest = max((len(h) for h in self._view), default=HOST_MIN)
        key = (width, longest)
        if self._layout is None or key != self._layout_key:
            self._layout = make_layout(width, longest)
            self._layout_key = key
        return self._layout

    # --- drawing ---------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        """A component style without its background, so rows keep the widget's background."""
        return self.get_component_rich_style(name, partial=True)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if self._model is None or self._now is None:
            return Strip.blank(width, _PLAIN)
        lay = self.layout_for(width)
        if y == 0:
            return self._header(lay, width)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self._lines):
            if index == 0 and self.empty_message:
                text = _fit(" " + self.empty_message, width)
                return Strip([Segment(text, self._style("fleet-table--dim"))])
            return Strip.blank(width, _PLAIN)
        line = self._lines[index]
        if isinstance(line, Section):
            hosts = f"{line.count} host{'s' if line.count != 1 else ''}"
            text = _fit(f" ▾ {line.label} · {hosts}", width)
            return Strip([Segment(text, self._style("fleet-table--header"))])
        row = self._model.rows.get(line)
        if row is None:
            return Strip.blank(width, _PLAIN)
        strip = self._row(row, lay, width, cursor=index == self.cursor)
        if index == self.cursor:
            strip = strip.apply_style(self._style("fleet-table--cursor"))
        return strip

    def _header(self, lay: Layout, width: int) -> Strip:
        assert self._model is not None
        base = self._style("fleet-table--header")
        sorted_style = base + self._style("fleet-table--sorted")
        segs: list[Segment] = []
        x = 0
        for key, cx, w in lay.cells:
            label = LABELS[key]
            if key == self._model.sort_key:
                label += "▼" if self._model.reverse else "▲"
            if key in GAUGES:  # over the number; the arrow takes the ``!`` slot
                start = cx + CPU_W - 1 - len(LABELS[key])
            elif any(c.key == key and c.right for c in FIXED):
                start = cx + w - len(LABELS[key])
            else:
                start = cx
            start = max(start, x)  # a label may reach into the gap before it, never further
            if start > x:
                segs.append(Segment(" " * (start - x), base))
            text = label[: max(cx + w + lay.gap - start, 0)]
            if text:
                style = sorted_style if key == self._model.sort_key else base
                segs.append(Segment(text, style))
            x = start + len(text)
        if x < width:
            segs.append(Segment(" " * (width - x), base))
        return Strip(segs).crop(0, width)

    def _row(self, row: HostRow, lay: Layout, width: int, cursor: bool = False) -> Strip:
        assert self._model is not None and self._now is not None
        h = row.summary
        st = self._style
        dim = st("fleet-table--dim")
        marker = fmt.host_marker(h)
        if self._stale and h.status is HostStatus.up and not h.alerts_active:
            marker = fmt.MARK_STALE
        mark_style = st(
            {
                fmt.MARK_UP: "fleet-table--up",
                fmt.MARK_STALE: "fleet-table--stale",
                fmt.MARK_DOWN: "fleet-table--down",
                fmt.MARK_ALERT: "fleet-table--alert",
            }[marker]
        )
        plain = Style()
        current = h.status is HostStatus.up and not self._stale
        values = plain if current else dim  # a host not heard from lately: nothing looks live
        model = self._model

        def gauge(value: float | None, rule: str, subject: str = "") -> list[Segment]:
            lvl = model.flag(h.host, rule, value, subject, any_subject=rule == "disk")
            style = {"crit": st("fleet-table--crit"), "warn": st("fleet-table--warn")}.get(
                lvl, dim if value is None else values
            )
            if not current and lvl == "warn":
                style = dim
            over = fmt.MARK_OVER if lvl == "crit" else " "
            return [Segment(units.percent(value).rjust(CPU_W - 1), style), Segment(over, style)]

        def right(text: str, w: int, style: Style = values) -> list[Segment]:
            return [Segment(text.rjust(w), style)]

        seen_style = st("fleet-table--stale") if self._stale or h.status != "up" else plain
        up = fmt.host_up(h.status, h.uptime_s)
        cells: dict[SortKey, list[Segment]] = {
            SortKey.status: [Segment(marker, mark_style)],
            SortKey.host: [Segment(_fit(h.host, lay.host), dim if h.status != "up" else plain)],
            SortKey.mem: gauge(h.memory_percent, "memory"),
            SortKey.disk: gauge(h.disk_percent, "disk", h.disk_mount or ""),
            SortKey.load: right(fmt.load(h.load_1m), 4),
            SortKey.net: [Segment(fmt.rate_pair(h.net_rx_bytes_s, h.net_tx_bytes_s), values)],
            SortKey.up: right(up, 4, st("fleet-table--down") if up == "down" else values),
            SortKey.seen: right(fmt.duration(self._model.seen_ago(row, self._now)), 4, seen_style),
        }
        cpu = gauge(h.cpu_percent, "cpu")
        if lay.spark:
            cpu.append(Segment(" ", plain))
            # On the cursor's background (a shade of the same colour) the line takes the text's.
            spark = st("fleet-table--cursor-spark" if cursor else "fleet-table--spark")
            cpu.append(Segment(fmt.sparkline(list(row.cpu), lay.spark), spark if current else dim))
        cells[SortKey.cpu] = cpu
        segs: list[Segment] = []
        x = 0
        for key, cx, w in lay.cells:
            if cx > x:
                segs.append(Segment(" " * (cx - x), plain))
            if key is SortKey.os:
                cell = [Segment(_fit(h.os or "-", w).rstrip(), dim)]
            else:
                cell = cells[key]
            segs.extend(cell)
            x = cx + sum(len(s.text) for s in cell)
        if x < width:
            segs.append(Segment(" " * (width - x), plain))
        return Strip(segs).crop(0, width)

    # --- cursor and scrolling --------------------------------------------------------------
    def _host_near(self, index: int, step: int) -> int:
        """The line of the host at ``index``, or the nearest one towards ``step`` (then back)."""
        lines = self._lines
        for direction in (step or 1, -(step or 1)):
            i = index
            while 0 <= i < len(lines):
                if isinstance(lines[i], str):
                    return i
                i += direction
        return max(0, min(index, len(lines) - 1))

    def _move_to(self, index: int, step: int = 1) -> None:
        if not self._view:
            return
        self.cursor = self._host_near(max(0, min(index, len(self._lines) - 1)), step)
        line = self._lines[self.cursor]
        self.selected = line if isinstance(line, str) else None
        self._scroll_cursor_into_view()
        self.refresh()

    def _scroll_cursor_into_view(self) -> None:
        body = max(self.size.height - 1, 1)
        top = int(self.scroll_offset.y)
        first = self.cursor
        if first and first < len(self._lines) and isinstance(self._lines[first - 1], Section):
            first -= 1
        if first < top:  # a group's first host brings its section row into view with it
            self.scroll_to(y=first, animate=False, immediate=True)
        elif self.cursor >= top + body:
            self.scroll_to(y=self.cursor - body + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta, delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor + direction * max(self.size.height - 2, 1), direction)

    def action_jump(self, index: int) -> None:
        self._move_to(index if index >= 0 else len(self._lines) - 1, 1 if index >= 0 else -1)

    def action_open(self) -> None:
        if self.selected is not None:
            self.post_message(self.Opened(self.selected))

    def select_host(self, host: str) -> bool:
        """Put the cursor on ``host`` if it is shown."""
        if host in self._view:
            self._move_to(self._lines.index(host))
            return True
        return False

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            lay = self.layout_for(self.scrollable_content_region.width)
            for key, cx, w in lay.cells:
                if cx <= event.x < cx + w + lay.gap:
                    self.post_message(self.SortClicked(key))
                    return
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < len(self._lines) and isinstance(self._lines[index], str):
            already = index == self.cursor
            self._move_to(index)
            if already or event.chain >= 2:
                self.action_open()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._lines) + 1)
        self.refresh()


def _fit(text: str, width: int) -> str:
    """``text`` (escaped) padded or cut to ``width`` cells, marking a cut with an ellipsis."""
    text = one_line(text)
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(width - 1, 0)] + "…"
