"""The host screen: facts, charts over a chosen range, disks, top processes, alerts and checks."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Footer, Static

from statusdash import catalog, units
from statusdash.client import ClientError
from statusdash.safetext import one_line
from statusdash.schema import HistorySeries, HostDetail
from statusdash.tui import fmt
from statusdash.tui.messages import HistoryFetched, HostFetched, HostFetchFailed
from statusdash.tui.screens.base import DataScreen
from statusdash.tui.source import DataSource
from statusdash.tui.widgets.chart import AXIS_W, Chart, LiveSeries, Series, stats
from statusdash.tui.widgets.host_panels import (
    CHECK_COLUMNS,
    DISK_COLUMNS,
    PROCESS_COLUMNS,
    RANGES,
    alerts_and_checks,
    disk_rows,
    facts_line,
    process_rows,
    range_line,
)
from statusdash.tui.widgets.lists import LinesPanel
from statusdash.tui.widgets.status_bar import login_expired

CHARTS: dict[str, tuple[str, ...]] = {
    "cpu": ("cpu.percent",),
    "mem": ("memory.percent",),
    "net": ("net.rx_bytes_s", "net.tx_bytes_s"),
    "io": ("disk_io.read_bytes_s", "disk_io.write_bytes_s"),
}
RANGE_SECONDS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def _rate(v: float) -> str:
    return units.size(v)


def _pct_label(v: float) -> str:
    return f"{v:.0f}"


class HostScreen(DataScreen):
    """One host in depth; ``1``-``5`` pick the charts' range, ``esc`` goes back."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        # One footer entry for the five ranges ("1-5 Range"); the help lists each of them.
        *(
            Binding(
                str(i + 1),
                f"range('{r}')",
                "Range",
                show=i == 0,
                key_display=f"1-{len(RANGES)}" if i == 0 else None,
                tooltip=f"Range {r}",
            )
            for i, r in enumerate(RANGES)
        ),
        Binding("R", "reload", "Reload", show=False),
    ]

    def __init__(self, host: str, since: str = "1h") -> None:
        super().__init__()
        self.host = host
        self.since = since
        self.detail: HostDetail | None = None
        self.error = ""
        self._detail_timer: Timer | None = None
        self._history_timer: Timer | None = None
        self._live: dict[str, LiveSeries] = {}  # metric -> its history, then live values
        self.history_loads = 0  # answers of the history API taken (tests: live needs none)

    def compose(self) -> ComposeResult:
        with Horizontal(id="host-head"):
            yield Static(id="host-facts")
            yield Static(id="host-range")
        with Grid(id="charts"):
            for key, title, label, ceiling in (
                ("cpu", "CPU %", _pct_label, fmt.nice_ceiling),
                ("mem", "Memory %", _pct_label, fmt.nice_ceiling),
                ("net", "Network ↓/↑ bytes/s", _rate, fmt.nice_ceiling_bytes),
                ("io", "Disk IO r/w bytes/s", _rate, fmt.nice_ceiling_bytes),
            ):
                with Vertical(id=f"{key}-panel", classes="panel chart-panel") as panel:
                    panel.border_title = title
                    yield Chart(label, ceiling, id=f"{key}-chart")
        with Horizontal(id="host-bottom"):
            for key, title, empty in (
                ("disks", "Disks", "no disks reported"),
                ("procs", "Top processes", "no processes reported"),
                ("checks", "Alerts · Services", "no alerts, no checks"),
            ):
                with Vertical(id=f"{key}-panel", classes="panel") as panel:
                    panel.border_title = title
                    yield LinesPanel(empty, id=f"{key}-lines")
        yield Footer()

    def on_mount(self) -> None:
        self.load_detail()
        self.load_history()

    # --- fetching (thread workers; they only post messages) ----------------------------------
    def load_detail(self) -> None:
        if self._detail_timer is not None:
            self._detail_timer.stop()
            self._detail_timer = None
        if self.is_current:
            self._fetch_detail(self.sd.source)
        else:
            self._schedule_detail()

    @work(thread=True, exit_on_error=False, group="host-detail", exclusive=True)
    def _fetch_detail(self, source: DataSource) -> None:
        try:
            self.post_message(HostFetched(source.host(self.host)))
        except ClientError as exc:
            self.post_message(HostFetchFailed(self.host, str(exc)))

    def load_history(self) -> None:
        if self._history_timer is not None:
            self._history_timer.stop()
            self._history_timer = None
        self._fetch_history(self.sd.source, self.since, self._points())

    @work(thread=True, exit_on_error=False, group="host-history", exclusive=True)
    def _fetch_history(self, source: DataSource, since: str, points: int) -> None:
        out: dict[str, HistorySeries] = {}
        try:
            for metrics in CHARTS.values():
                for metric in metrics:
                    out[metric] = source.history(self.host, metric, since, points)
        except ClientError as exc:
            self.post_message(HostFetchFailed(self.host, f"history: {exc}"))
            return
        self.post_message(HistoryFetched(self.host, since, out))

    def _points(self) -> int:
        width = self.query_one("#cpu-chart", Chart).content_region.width or 80
        return max(60, min(300, width - AXIS_W))

    def _schedule_detail(self) -> None:
        if self.is_mounted:
            self._detail_timer = self.set_timer(max(self.sd.poll_interval, 2.0), self.load_detail)

    def _schedule_history(self, bucket_s: float) -> None:
        if self.is_mounted:
            delay = min(max(10.0, bucket_s), 300.0)
            self._history_timer = self.set_timer(delay, self._refresh_history)

    def _refresh_history(self) -> None:
        if self.is_current:
            self.load_history()
        else:
            self._schedule_history(10.0)

    # --- handlers ----------------------------------------------------------------------------
    @on(HostFetched)
    def _detail(self, message: HostFetched) -> None:
        self.detail, self.error = message.detail, ""
        self._draw_detail()
        self._add_live(message.detail)
        self._schedule_detail()

    def _add_live(self, detail: HostDetail) -> None:
        """The report's values appended to the charts, until the next history answer."""
        report, metrics = detail.report, catalog.by_name()
        news = [
            live.add(report.collected_at, metrics[name].read(report))
            for name, live in self._live.items()
            if name in metrics
        ]
        if any(news):
            self._draw_charts()

    @on(HostFetchFailed)
    def _failed(self, message: HostFetchFailed) -> None:
        self.error = message.error
        if message.error.startswith("history:"):
            for chart in self.query(Chart):
                if not chart.has_class("loaded"):
                    chart.set_message(message.error)
            self._schedule_history(10.0)
        else:
            self._schedule_detail()
        self.redraw()

    @on(HistoryFetched)
    def _history(self, message: HistoryFetched) -> None:
        if message.since != self.since:
            return
        self.history_loads += 1
        self._live = {m: LiveSeries(s) for m, s in message.series.items()}
        if self.detail is not None:
            self._add_live(self.detail)  # a report newer than the answer's end
        self._draw_charts()
        bucket = next(iter(message.series.values())).bucket_s if message.series else 10.0
        self._schedule_history(bucket)

    def chart_values(self, metric: str) -> list[float | None]:
        """What the chart of ``metric`` draws now: its history, then live values."""
        live = self._live.get(metric)
        return [] if live is None else live.values(self.sd.now())

    def _draw_charts(self) -> None:
        """Each chart and its footer from one list of values per series."""
        now = self.sd.now()
        for key, metrics in CHARTS.items():
            if not all(m in self._live for m in metrics):
                continue
            chart = self.query_one(f"#{key}-chart", Chart)
            values = [self._live[m].values(now) for m in metrics]
            if key in ("cpu", "mem"):
                chart.set_series([Series("", values[0], top=100.0)], left=f"-{self.since}")
            else:
                names = ("↓", "↑") if key == "net" else ("r", "w")
                chart.set_series(
                    [Series(n, v) for n, v in zip(names, values, strict=True)],
                    left=f"-{self.since}",
                )
            chart.add_class("loaded")
            self.query_one(f"#{key}-panel").border_subtitle = self._subtitle(key, values)

    def _subtitle(self, key: str, values: list[list[float | None]]) -> str:
        if key in ("cpu", "mem"):
            last, mean, top = stats(values[0])
            return f"now {units.percent(last)} avg {units.percent(mean)} max {units.percent(top)}"
        names = ("↓", "↑") if key == "net" else ("r", "w")
        parts = []
        for name, vals in zip(names, values, strict=True):
            last, _mean, top = stats(vals)
            parts.append(f"{name} {units.size(last)} max {units.size(top)}")
        return " · ".join(parts)

    # --- drawing -----------------------------------------------------------------------------
    def data_changed(self) -> None:
        model, now = self.sd.model, self.sd.now()
        row = model.rows.get(self.host)
        seen = model.seen_ago(row, now) if row else None
        note = None
        if self.error:
            note = Content.styled("⚠ " + one_line(self.error), "$error")
        elif login_expired(model):
            note = Content.styled("(stale: login expired)", "$error")
        elif model.data_stale(now):
            note = Content.styled("(stale: server unreachable)", "$warning")
        box = self.query_one("#host-facts", Static)
        summary = row.summary if row else None
        facts = facts_line(self.host, summary, self.detail, seen, box.content_region.width, note)
        box.update(facts)
        self.query_one("#host-range", Static).update(range_line(self.since))

    def _draw_detail(self) -> None:
        if self.detail is None:
            return
        d = self.detail
        judge = self.sd.model.disk_judge(self.host)  # the server's rules for each mount
        disks = self.query_one("#disks-lines", LinesPanel)
        disks.set_table(DISK_COLUMNS, disk_rows(d, judge), header=True)
        procs = self.query_one("#procs-lines", LinesPanel)
        procs.set_table(PROCESS_COLUMNS, process_rows(d), header=True)
        checks = self.query_one("#checks-lines", LinesPanel)
        checks.set_table(CHECK_COLUMNS, alerts_and_checks(d, self.sd.now()))
        # One height for the three panels: the tallest list's, within 40% of the screen.
        want = max(disks.line_count, procs.line_count, checks.line_count) + 2
        self.query_one("#host-bottom").styles.height = min(want, max(5, self.size.height * 2 // 5))
        if d.report.processes is not None:
            self.query_one("#procs-panel").border_subtitle = f"{d.report.processes.count} total"
        load, mem = d.report.load, d.report.memory
        if load is not None:
            self.query_one(
                "#cpu-panel"
            ).border_title = (
                f"CPU % · load {fmt.load(load.m1)} {fmt.load(load.m5)} {fmt.load(load.m15)}"
            )
        if mem is not None:
            self.query_one(
                "#mem-panel"
            ).border_title = f"Memory % · {units.size(mem.used)}/{units.size(mem.total)}"
        self.redraw()

    # --- actions -----------------------------------------------------------------------------
    def action_range(self, since: str) -> None:
        if since == self.since:
            return
        self.since = since
        self._live = {}
        for chart in self.query(Chart):
            chart.remove_class("loaded")
            chart.set_message(f"loading {since}…")
        self.redraw()
        self.load_history()

    def action_reload(self) -> None:
        self.load_detail()
        self.load_history()

    def action_back(self) -> None:
        self.dismiss(None)
