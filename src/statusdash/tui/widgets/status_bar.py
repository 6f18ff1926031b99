"""The top line of every screen: fleet counts on the left, sentiment and connection on the right."""

from __future__ import annotations

from datetime import datetime

from textual.content import Content
from textual.widget import Widget

from statusdash.tui import fmt
from statusdash.tui.model import ConnState, FleetModel


def link_text(model: FleetModel, now: datetime) -> Content:
    """``live ●`` / ``polling`` / ``reconnecting · data 12s old`` / ``offline · data 2m old``."""
    link = model.link
    state = link.state(now)
    if state is ConnState.live:
        return Content.assemble("live ", ("●", "$success"))
    if state is ConnState.polling:
        return Content(f"polling · {fmt.duration(link.data_age(now))}")
    if state is ConnState.connecting:
        return Content.styled("connecting…", "$warning")
    age = link.data_age(now)
    tail = f" · data {fmt.duration(age)} old" if age is not None else " · no data yet"
    style = "$warning" if state is ConnState.reconnecting else "$error"
    return Content.styled(f"{state.value}{tail}", style)


def sentiment_text(model: FleetModel, now: datetime) -> Content:
    s = model.sentiment
    if s is None:
        return Content("")
    style = {"healthy": "$success", "degraded": "$warning", "unhealthy": "$error"}[s.status]
    word = s.status.upper()
    if model.data_stale(now):
        return Content.assemble((word, style), ("?", "bold"), " ")
    return Content.styled(word, f"bold {style}")


def counts_text(model: FleetModel, compact: bool) -> Content:
    c = model.counts()
    n = len(model.rows)
    alerts = model.alerts_active()
    alert_style = "$error" if alerts else ""
    if compact:
        return Content.assemble(
            f"{n} hosts ",
            (f"{fmt.MARK_UP}{c['up']}", "$success"),
            " ",
            (f"{fmt.MARK_STALE}{c['stale']}", "$warning" if c["stale"] else ""),
            " ",
            (f"{fmt.MARK_DOWN}{c['down']}", "$error" if c["down"] else ""),
            " ",
            (f"{fmt.MARK_ALERT}{alerts}", alert_style),
        )
    return Content.assemble(
        f"{n} hosts · ",
        (f"{fmt.MARK_UP} {c['up']} up", "$success"),
        " ",
        (f"{fmt.MARK_STALE} {c['stale']} stale", "$warning" if c["stale"] else ""),
        " ",
        (f"{fmt.MARK_DOWN} {c['down']} down", "$error" if c["down"] else ""),
        " · ",
        (f"{fmt.MARK_ALERT} {alerts} alert{'s' if alerts != 1 else ''}", alert_style),
    )


class StatusBar(Widget):
    """``statusdash · 4 hosts · ● 3 up ◐ 1 stale ○ 0 down · ▲ 2 alerts  DEGRADED · live ●``."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self, title: str = "statusdash", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self._model: FleetModel | None = None
        self._now: datetime | None = None

    def show(self, model: FleetModel, now: datetime) -> None:
        self._model, self._now = model, now
        self.refresh()

    def render(self) -> Content:
        width = self.content_region.width or self.size.width
        if self._model is None or self._now is None:
            return Content.styled(self.title, "bold")
        right = Content(" ").join(
            t
            for t in (sentiment_text(self._model, self._now), link_text(self._model, self._now))
            if t.plain
        )
        for compact in (False, True):
            left = Content.assemble((self.title, "bold"), " · ", counts_text(self._model, compact))
            if left.cell_length + right.cell_length + 2 <= width:
                break
        pad = max(width - left.cell_length - right.cell_length, 1)
        return Content.assemble(left, " " * pad, right).truncate(width)
