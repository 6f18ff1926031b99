"""The top line of every screen: fleet counts on the left, sentiment and connection on the right."""

from __future__ import annotations

from datetime import datetime

from textual.content import Content
from textual.widget import Widget

from statusdash import units
from statusdash.tui import fmt
from statusdash.tui.model import ConnState, FleetModel

# The link error the app sets when the server refused the login; the bar says so in words.
LOGIN_EXPIRED = "login expired: run statusdash login"
LOGIN_KEY = "L"  # the app's key for the password prompt


def login_expired(model: FleetModel) -> bool:
    """True while the server refuses our login (until a new one is picked up)."""
    return model.link.error.startswith(LOGIN_EXPIRED)


def link_text(model: FleetModel, now: datetime, short: bool = False) -> Content:
    """``live ●`` / ``polling`` / ``reconnecting · data 12s old`` / ``offline · data 2m old``;
    ``login expired · L log in · data 12s old`` (``short``: without the age) once refused."""
    link = model.link
    state = link.state(now)
    if login_expired(model):
        age = link.data_age(now)
        tail = "" if short or age is None else f" · data {fmt.duration(age)} old"
        return Content.styled(f"login expired · {LOGIN_KEY} log in{tail}", "bold $error")
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
            f"{units.count(n, 'host')} ",
            (f"{fmt.MARK_UP}{c['up']}", "$success"),
            " ",
            (f"{fmt.MARK_STALE}{c['stale']}", "$warning" if c["stale"] else ""),
            " ",
            (f"{fmt.MARK_DOWN}{c['down']}", "$error" if c["down"] else ""),
            " ",
            (f"{fmt.MARK_ALERT}{alerts}", alert_style),
        )
    return Content.assemble(
        f"{units.count(n, 'host')} · ",
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
        sentiment = sentiment_text(self._model, self._now)
        for compact, short in ((False, False), (True, False), (True, True)):
            link = link_text(self._model, self._now, short)
            right = Content(" ").join(t for t in (sentiment, link) if t.plain)
            left = Content.assemble((self.title, "bold"), " · ", counts_text(self._model, compact))
            if left.cell_length + right.cell_length + 2 <= width:
                break
        pad = max(width - left.cell_length - right.cell_length, 1)
        return Content.assemble(left, " " * pad, right).truncate(width)
