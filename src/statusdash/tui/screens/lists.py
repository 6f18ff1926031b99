"""The alerts screen and the services screen: one table each, kept current by the app's polls."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Footer

from statusdash.client import ClientError
from statusdash.safetext import one_line
from statusdash.schema import AlertPublic
from statusdash.tui import fmt
from statusdash.tui.messages import AllAlertsFetched
from statusdash.tui.model import sort_alerts
from statusdash.tui.screens.base import DataScreen
from statusdash.tui.source import DataSource
from statusdash.tui.widgets.alert_rows import (
    ACTION_DONE,
    ALERTS_HEADER,
    SILENCE_FOR_S,
    AlertActed,
    SilencesFetched,
    alert_cells,
)
from statusdash.tui.widgets.columns import fit
from statusdash.tui.widgets.lists import (
    HEALTH_STYLE,
    alert_what,
    checked_ago,
    health_cell,
    service_detail,
    silenced_by,
)
from statusdash.tui.widgets.status_bar import StatusBar
from statusdash.wire import HealthStatus


def _fit_last(
    table: DataTable[Content | Text | str], rows: list[tuple[str, list[Content | str]]]
) -> None:
    """Cut the last column (free text) to the room the others leave, rather than scroll sideways."""
    if not rows:
        return
    labels = [c.label.plain for c in table.columns.values()]
    pad = 2 * table.cell_padding
    used = sum(
        max(len(labels[i]), *(len(_plain(cells[i])) for _k, cells in rows)) + pad
        for i in range(len(labels) - 1)
    )
    room = max(table.scrollable_content_region.width - used - pad, 12)
    for _key, cells in rows:
        text = cells[-1]
        if len(_plain(text)) > room:
            cells[-1] = fit(_plain(text), room)


def _plain(cell: Content | str) -> str:
    return one_line(cell) if isinstance(cell, str) else cell.plain


def _shown(cell: Content | str) -> Content | Text:
    """A cell as the table draws it: text is data, never markup (DataTable parses a ``str``).

    A Rich ``Text``, not a ``Content``: DataTable measures its cells with Rich.
    """
    return Text(one_line(cell)) if isinstance(cell, str) else cell


def _refill(
    table: DataTable[Content | Text | str], rows: list[tuple[str, list[Content | str]]]
) -> None:
    """Replace the rows, keeping the cursor on the same key when it is still there."""
    keep = None
    if table.row_count and 0 <= table.cursor_row < table.row_count:
        keep = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    table.clear()
    for key, cells in rows:
        table.add_row(*map(_shown, cells), key=key)
    keys = [k for k, _ in rows]
    if keep in keys:
        table.move_cursor(row=keys.index(keep), animate=False)


class AlertsScreen(DataScreen):
    """Active alerts (``A`` shows resolved ones too), most severe first, then newest; keys on
    the selected row: ``k`` ack, ``s`` silence, ``u`` unsilence, ``r`` resolve, ``enter`` host."""

    BINDINGS = [
        Binding("A", "toggle_all", "Show all/active"),
        Binding("enter", "open", "Open host"),
        # The footer has room for one more at 80 columns; the panel's border lists all four.
        Binding("k", "act('ack')", "Ack"),
        Binding("s", "silence", "Silence 2h", show=False),
        Binding("u", "act('unsilence')", "Unsilence", show=False),
        Binding("r", "act('resolve')", "Resolve", show=False),
        Binding("escape", "app.switch_mode('fleet')", "Fleet"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_all = False
        self._all: list[AlertPublic] | None = None
        self.silences: list[dict[str, Any]] = []
        self._rows: dict[str, AlertPublic] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar("statusdash · alerts", id="status")
        with Vertical(classes="panel", id="alerts-table-panel"):
            yield DataTable[Content | Text | str](
                id="alerts-table", cursor_type="row", zebra_stripes=True
            )
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*ALERTS_HEADER)
        self.query_one("#alerts-table-panel").border_title = "Alerts"
        self._fetch_silences(self.sd.source)

    def on_screen_resume(self) -> None:
        if self._ready:
            self._fetch_silences(self.sd.source)

    def data_changed(self) -> None:
        model, now = self.sd.model, self.sd.now()
        self.query_one(StatusBar).show(model, now)
        alerts = self._all if self.show_all and self._all is not None else model.alerts
        if not self.show_all:
            alerts = [a for a in alerts if a.state != "resolved"]
        self._rows = {}
        rows: list[tuple[str, list[Content | str]]] = []
        for a in sort_alerts(alerts):
            self._rows[str(a.id)] = a
            rows.append((str(a.id), alert_cells(a, silenced_by(a, self.silences, now), now)))
        _fit_last(self.query_one(DataTable), rows)
        _refill(self.query_one(DataTable), rows)
        panel = self.query_one("#alerts-table-panel")
        panel.border_title = f"Alerts · {'all' if self.show_all else 'active'} ({len(rows)})"
        shown = "A: active only" if self.show_all else "A: show resolved too"
        panel.border_subtitle = f"k ack · s silence 2h · u unsilence · r resolve · {shown}"

    def selected(self) -> AlertPublic | None:
        """The alert on the cursor's row, if any."""
        table = self.query_one(DataTable)
        if not table.row_count or not 0 <= table.cursor_row < table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._rows.get(str(key))

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        if self.show_all:
            self._fetch_all(self.sd.source)
        self.redraw()

    @work(thread=True, exit_on_error=False, group="alerts-all", exclusive=True)
    def _fetch_all(self, source: DataSource) -> None:
        try:
            self.post_message(AllAlertsFetched(source.alerts("all")))
        except ClientError as exc:
            self.post_message(AllAlertsFetched([], error=str(exc)))

    @on(AllAlertsFetched)
    def _got_all(self, message: AllAlertsFetched) -> None:
        if message.error:
            self.notify(one_line(message.error), title="alerts", severity="error", markup=False)
            return
        self._all = message.alerts
        self.redraw()

    # --- acting on the selected alert (thread workers; the answer comes as a message) --------
    def action_act(self, action: str) -> None:
        alert = self.selected()
        if alert is None:
            return
        if action == "unsilence":  # the silences that mute it, as the server matches them
            now = self.sd.now()
            ids = [int(s["id"]) for s in self.silences if silenced_by(alert, [s], now)]
            if not ids:
                self.notify("no silence in force mutes this alert", title="alerts")
                return
            self._unsilence(self.sd.source, alert, ids)
            return
        self._act(self.sd.source, alert, action)

    @work(thread=True, exit_on_error=False, group="alerts-act")
    def _unsilence(self, source: DataSource, alert: AlertPublic, ids: list[int]) -> None:
        try:
            for silence_id in ids:
                source.unsilence(silence_id)
        except ClientError as exc:
            self.post_message(AlertActed(alert, "unsilence", str(exc)))
            return
        self.post_message(AlertActed(alert, "unsilence"))

    def action_silence(self) -> None:
        alert = self.selected()
        if alert is not None:
            self._act(self.sd.source, alert, "silence")

    @work(thread=True, exit_on_error=False, group="alerts-act")
    def _act(self, source: DataSource, alert: AlertPublic, action: str) -> None:
        try:
            if action == "silence":
                source.silence(alert, SILENCE_FOR_S)
            else:
                source.alert_action(alert.id, action)
        except ClientError as exc:
            self.post_message(AlertActed(alert, action, str(exc)))
            return
        self.post_message(AlertActed(alert, action))

    @on(AlertActed)
    def _acted(self, message: AlertActed) -> None:
        a = message.alert
        what = f"{a.host} {alert_what(a)}"
        if message.error:
            self.notify(
                one_line(f"{message.action} {what}: {message.error}"),
                title="alerts",
                severity="error",
                markup=False,
            )
            return
        done = ACTION_DONE[message.action]
        self.notify(one_line(f"{done} {what}"), title="alerts", markup=False)
        self.sd.poll_now()  # the alerts (and their acks) come back with the next poll
        self._fetch_silences(self.sd.source)
        if self.show_all:
            self._fetch_all(self.sd.source)

    @work(thread=True, exit_on_error=False, group="alerts-silences", exclusive=True)
    def _fetch_silences(self, source: DataSource) -> None:
        try:
            self.post_message(SilencesFetched(source.silences()))
        except ClientError as exc:
            self.post_message(SilencesFetched([], str(exc)))

    @on(SilencesFetched)
    def _got_silences(self, message: SilencesFetched) -> None:
        if not message.error:
            self.silences = message.silences
            self.redraw()

    def action_open(self) -> None:
        alert = self.selected()
        if alert is not None:
            self.sd.open_host(alert.host)

    @on(DataTable.RowSelected)
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open()


class ServicesScreen(DataScreen):
    """Service health: every service the server knows, unhealthy first."""

    BINDINGS = [
        Binding("enter", "open", "Open host"),
        Binding("escape", "app.switch_mode('fleet')", "Fleet"),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar("statusdash · services", id="status")
        with Vertical(classes="panel", id="services-table-panel"):
            yield DataTable[Content | Text | str](
                id="services-table", cursor_type="row", zebra_stripes=True
            )
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", "SERVICE", "HOST", "STATUS", "CHECKED", "DETAIL")
        self.query_one("#services-table-panel").border_title = "Services"

    def data_changed(self) -> None:
        model, now = self.sd.model, self.sd.now()
        self.query_one(StatusBar).show(model, now)
        rows: list[tuple[str, list[Content | str]]] = []
        for i, s in enumerate(model.services):
            word, _style = health_cell(s.status)  # plain: the table measures plain text
            rows.append(
                (
                    f"{s.name}@{s.host or ''}#{i}",
                    [
                        Content.styled(fmt.health_marker(s.status), HEALTH_STYLE[s.status]),
                        s.name,
                        s.host or "",
                        word,
                        checked_ago(s, now),
                        service_detail(s),
                    ],
                )
            )
        table = self.query_one(DataTable)
        _fit_last(table, rows)
        _refill(table, rows)
        bad = sum(1 for s in model.services if s.status is HealthStatus.unhealthy)
        self.query_one(
            "#services-table-panel"
        ).border_title = f"Services ({len(rows)}, {bad} unhealthy)"

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            host = str(table.get_row_at(table.cursor_row)[2])
            if host:
                self.sd.open_host(host)

    @on(DataTable.RowSelected)
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open()
