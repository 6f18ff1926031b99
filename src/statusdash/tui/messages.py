"""Messages that workers post to the app; handlers on the app and screens own all state."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from statusdash.schema import (
    AlertPublic,
    HistorySeries,
    HostDetail,
    HostSummary,
    Sentiment,
    ServiceHealth,
)
from statusdash.tui.source import StreamEvent


@dataclass
class FleetFetched(Message):
    """A poll answered: hosts first (``final`` False), then the rest that answered (``final``)."""

    hosts: list[HostSummary] | None
    final: bool = True
    sentiment: Sentiment | None = None
    alerts: list[AlertPublic] | None = None
    services: list[ServiceHealth] | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class FetchFailed(Message):
    """A poll failed as a whole (the hosts endpoint did not answer)."""

    error: str
    auth: bool = False


@dataclass
class LoginRenewed(Message):
    """A renewal ended: due again in ``next_in`` s (None: never); ``problem`` if it failed."""

    next_in: float | None
    problem: str = ""


@dataclass
class LoginEnded(Message):
    """The server no longer takes the login (expired, password changed, revoked)."""

    reason: str


@dataclass
class StoredLoginFound(Message):
    """While the login was refused, a new one appeared in the token store and was taken up."""


@dataclass
class LoginAnswered(Message):
    """The password prompt's login ended: ``error`` empty when the server took it."""

    error: str = ""


@dataclass
class StreamOpened(Message):
    """The live stream is connected."""


@dataclass
class StreamClosed(Message):
    """The live stream ended or could not open; ``available`` False means the server has none."""

    reason: str
    available: bool = True


@dataclass
class StreamBatch(Message):
    """Events that arrived on the stream within one short window; hosts already parsed."""

    events: list[StreamEvent]
    hosts: list[HostSummary] = field(default_factory=list)


@dataclass
class HostFetched(Message):
    """The detail of one host."""

    detail: HostDetail


@dataclass
class HistoryFetched(Message):
    """History series of one host for one range, keyed by metric."""

    host: str
    since: str
    series: dict[str, HistorySeries]


@dataclass
class HostFetchFailed(Message):
    """The host screen's data did not come."""

    host: str
    error: str


@dataclass
class AllAlertsFetched(Message):
    """Every alert, resolved ones included (the alerts screen's ``A``); ``error`` on failure."""

    alerts: list[AlertPublic]
    error: str = ""
