"""The alerts screen's rows and messages: one value per row, severity first, nothing untrue.

A row reads ``▲ critical  db-1  disk /data  96%  ≥ 95%  for 4m  firing ✓admin ⊘silenced``:
the latest value the server judged, the threshold it judged it against, and how long the
condition has held (from when it first held, so FOR counts the pending time too). A resolved
alert says when it resolved and what *was* true, never its old message as if it still held.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from textual.content import Content
from textual.message import Message

from statusdash.schema import AlertPublic
from statusdash.tui.widgets.lists import (
    ALERT_MARK,
    ALERT_STYLE,
    alert_current,
    alert_detail,
    alert_limit,
    alert_marks,
    alert_what,
    alert_when,
)

ALERTS_HEADER = (" ", "SEV", "HOST", "ALERT", "VALUE", "AT", "SINCE", "STATE", "DETAIL")
# ``s`` on the alerts screen silences the row's host, rule and subject this long: the same
# as ``statusdash alerts silence``'s --for default; longer ones come from the CLI.
SILENCE_FOR_S = 2 * 3600.0
ACTION_DONE = {
    "ack": "acknowledged",
    "silence": "silenced for 2h:",
    "unsilence": "unsilenced",
    "resolve": "resolved",
}


def alert_cells(a: AlertPublic, silenced: bool, now: datetime) -> list[Content | str]:
    """The cells of ``ALERTS_HEADER`` for one alert; text cells are data (escaped later)."""
    return [
        Content.styled(ALERT_MARK.get(a.state, "▲"), ALERT_STYLE.get(a.state, "")),
        a.severity,  # a str: the table sizes its columns from the text it measures
        a.host,
        alert_what(a),
        alert_current(a),
        alert_limit(a),
        alert_when(a, now),
        alert_marks(a, silenced),
        alert_detail(a),
    ]


@dataclass
class AlertActed(Message):
    """An action on one alert (ack, silence, unsilence, resolve) ended; ``error`` if refused."""

    alert: AlertPublic
    action: str
    error: str = ""


@dataclass
class SilencesFetched(Message):
    """The silences in force (to mark the alerts they mute); ``error`` on failure."""

    silences: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
