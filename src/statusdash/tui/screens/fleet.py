"""The fleet screen (default): every host in a row, active alerts and services below."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Input

from statusdash.safetext import one_line
from statusdash.tui.model import SortKey
from statusdash.tui.screens.base import DataScreen
from statusdash.tui.widgets.fleet_table import FleetTable
from statusdash.tui.widgets.lists import (
    ALERT_COLUMNS,
    SERVICE_COLUMNS,
    LinesPanel,
    alert_row,
    service_row,
)
from statusdash.tui.widgets.status_bar import StatusBar

SORT_LABELS = {
    SortKey.status: "status",
    SortKey.host: "host",
    SortKey.cpu: "CPU",
    SortKey.mem: "memory",
    SortKey.disk: "disk",
    SortKey.load: "load",
    SortKey.net: "network",
    SortKey.up: "uptime",
    SortKey.seen: "last seen",
    SortKey.os: "OS",
}


class FleetScreen(DataScreen):
    """Hosts with marker, CPU and its sparkline, memory, disk, load, network, uptime, last seen."""

    BINDINGS = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "cycle_sort(-1)", "Sort back", show=False),
        Binding("r", "reverse_sort", "Reverse", show=False),
        Binding("slash", "filter", "Filter"),
        Binding(
            "t", "cycle_group", "Group", tooltip="Group by the next tag key (none after the last)"
        ),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Vertical(id="fleet-panel", classes="panel"):
            yield FleetTable(id="fleet")
        with Horizontal(id="fleet-bottom"):
            with Vertical(id="alerts-panel", classes="panel"):
                yield LinesPanel("no active alerts", id="alert-lines")
            with Vertical(id="services-panel", classes="panel"):
                yield LinesPanel("no services reported", id="service-lines")
        yield Input(
            placeholder="filter: words in host, OS, status, tags; role=db; enter keeps, esc clears",
            id="filter",
            select_on_focus=False,
        )
        yield Footer()

    _tagged = False  # some host has tags: the group-by key is offered in the footer

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cycle_group":
            return self._tagged
        return True

    def on_mount(self) -> None:
        self.query_one("#fleet-panel").border_title = "Fleet"
        self.query_one("#alerts-panel").border_title = "Alerts"
        self.query_one("#services-panel").border_title = "Services"
        self.query_one(FleetTable).focus()

    def data_changed(self) -> None:
        model, now = self.sd.model, self.sd.now()
        self.query_one(StatusBar).show(model, now)
        table = self.query_one(FleetTable)
        link = model.link
        if link.error and not model.rows:
            table.empty_message = f"{link.error}; retrying"
        elif link.last_ok is None:
            table.empty_message = f"connecting to {self.sd.source.label}…"
        elif not model.rows:
            table.empty_message = "no host has reported yet (start one: statusdash agent run)"
        else:
            table.empty_message = f"no host matches “{model.filter_text}” (esc clears)"
        table.show(model, now)
        tagged = bool(model.tag_keys())
        if tagged != self._tagged:
            self._tagged = tagged
            # 't Group' takes the room of the '^p palette' hint, so the keys stay whole at 80
            # columns (ctrl+p still opens the palette; the help overlay lists it)
            self.query_one(Footer).show_command_palette = not tagged
            self.refresh_bindings()
        panel = self.query_one("#fleet-panel")
        shown, total = len(table.rows_shown), len(model.rows)
        order = f"sort {SORT_LABELS[model.sort_key]} {'▼' if model.reverse else '▲'}"
        if model.group_by is not None:
            order = f"group {model.group_by} · {order}"
        flt = f"filter “{model.filter_text}” {shown}/{total} · " if model.filter_text else ""
        warn = f"⚠ {link.error} · " if link.error and model.rows else ""
        panel.border_subtitle = Content(one_line(warn + flt + order))  # a str would be markup
        problems = {p.split(":", 1)[0]: p for p in model.problems}
        active = [a for a in model.alerts if a.state != "resolved"]
        alert_lines = self.query_one("#alert-lines", LinesPanel)
        alert_lines.set_table(
            ALERT_COLUMNS,
            [alert_row(a, now) for a in active],
            empty=problems.get("alerts", "no active alerts"),
        )
        self.query_one("#alerts-panel").border_title = f"Alerts ({len(active)})"
        service_lines = self.query_one("#service-lines", LinesPanel)
        service_lines.set_table(
            SERVICE_COLUMNS,
            [service_row(s, now) for s in model.services],
            gap=2,
            empty=problems.get("services", "no services reported"),
        )
        bad = sum(1 for s in model.services if s.status == "unhealthy")
        self.query_one("#services-panel").border_title = (
            f"Services ({len(model.services)}, {bad} unhealthy)" if bad else "Services"
        )
        # The lists take the lines they need (a quarter of the screen at most), the table the rest.
        want = max(alert_lines.line_count, service_lines.line_count) + 2
        cap = max(5, self.size.height // 4)
        self.query_one("#fleet-bottom").styles.height = min(want, cap)

    # --- actions ---------------------------------------------------------------------------
    def action_cycle_sort(self, step: int = 1) -> None:
        model = self.sd.model
        if step >= 0:
            model.cycle_sort()
        else:
            keys = list(SortKey)
            model.set_sort(keys[(keys.index(model.sort_key) - 1) % len(keys)])
        self.redraw()

    def action_reverse_sort(self) -> None:
        model = self.sd.model
        model.set_sort(model.sort_key, reverse=not model.reverse)
        self.redraw()

    def action_cycle_group(self) -> None:
        """Group the fleet by the next tag key present (none after the last)."""
        self.sd.model.cycle_group()
        self.redraw()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.value = self.sd.model.filter_text
        box.cursor_position = len(box.value)
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if self.sd.model.filter_text or box.has_class("shown"):
            box.value = ""
            self._close_filter(apply="")

    def _close_filter(self, apply: str) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("shown")
        self.sd.model.set_filter(apply)
        self.query_one(FleetTable).focus()
        self.redraw()

    @on(Input.Changed, "#filter")
    def _filter_typed(self, event: Input.Changed) -> None:
        self.sd.model.set_filter(event.value)
        self.redraw()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self._close_filter(apply=event.value)

    @on(FleetTable.SortClicked)
    def _sort_clicked(self, event: FleetTable.SortClicked) -> None:
        self.sd.model.set_sort(event.key)
        self.redraw()

    @on(FleetTable.Opened)
    def _open(self, event: FleetTable.Opened) -> None:
        self.sd.open_host(event.host)

    def select_host(self, host: str) -> None:
        """Move the cursor to ``host``, clearing a filter that hides it."""
        table = self.query_one(FleetTable)
        if not table.select_host(host) and self.sd.model.filter_text:
            self.sd.model.set_filter("")
            self.redraw()
            table.select_host(host)
