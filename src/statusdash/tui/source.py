"""Where the TUI gets its data: a small blocking interface, one HTTP implementation, one in memory.

The TUI calls these methods from thread workers only, so they may block. Keeping them free of
Textual lets the bench and tests drive the same code without a terminal.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from statusdash.client import (
    ApiClient,
    ApiError,
    ClientError,
    Credentials,
    ServerUnreachable,
    TokenSession,
    TokenStore,
)
from statusdash.schema import (
    AlertPublic,
    HistorySeries,
    HostDetail,
    HostSummary,
    RulesInForce,
    Sentiment,
    ServiceHealth,
)

STREAM_PATH = "/api/stream"
T = TypeVar("T")


@dataclass(frozen=True)
class StreamEvent:
    """One message of ``WS /api/stream``: ``type`` such as ``host.updated`` and its ``data``."""

    type: str
    data: dict[str, Any]


class StreamUnavailable(ClientError):
    """The server has no stream (yet), or refused it; the TUI polls instead."""


class LiveStream(Protocol):
    """An open stream; ``recv`` returns ``None`` when nothing arrived within ``timeout``."""

    def recv(self, timeout: float) -> StreamEvent | None: ...

    def close(self) -> None: ...


class DataSource(Protocol):
    """The read API as the TUI needs it. Methods block and raise ``ClientError`` subclasses."""

    label: str

    def hosts(self) -> list[HostSummary]: ...

    def sentiment(self) -> Sentiment: ...

    def alerts(self, state: str = "active") -> list[AlertPublic]: ...

    def services(self) -> list[ServiceHealth]: ...

    def rules(self) -> RulesInForce: ...  # the alert rules in force, for every flag shown

    def alert_action(self, alert_id: int, action: str) -> None: ...  # ack or resolve

    def unsilence(self, silence_id: int) -> None: ...  # end one silence now

    def silence(self, alert: AlertPublic, for_s: float) -> None: ...  # its host, rule, subject

    def silences(self) -> list[dict[str, Any]]: ...  # the silences in force

    def host(self, host_id: str) -> HostDetail: ...

    def history(self, host_id: str, metric: str, since: str, points: int) -> HistorySeries: ...

    def open_stream(self) -> LiveStream | None: ...

    def renew_in(self) -> float | None:
        """Seconds until the login is due for renewal; None if it never is (certificates)."""
        ...

    def renew(self) -> None:
        """Renew the login now; ``LoginExpired`` if the server no longer takes it."""
        ...

    def adopt_stored_login(self) -> bool:
        """Take up a login stored since ours was refused (``statusdash login``); True if taken."""
        ...

    def log_in(self, password: str) -> None:
        """Log in with the admin password (the TUI's prompt); ``ApiError`` if refused."""
        ...

    def close(self) -> None: ...


# --- over HTTP ------------------------------------------------------------------------------


class ApiSource:
    """The read API over ``ApiClient``, with a small pool so concurrent workers never share one."""

    def __init__(
        self,
        base_url: str,
        *,
        ca: Path | None = None,
        credentials: Credentials | None = None,
        timeout: float = 5.0,
        store: TokenStore | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = self.base_url
        self._ca = ca
        self._creds = credentials or Credentials()
        token = self._creds.token
        # A token login renews itself (and keeps each renewal in ``store``); a certificate does not.
        self.session = (
            TokenSession(self.base_url, token, store=store)
            if token and self._creds.cert is None
            else None
        )
        self._timeout = timeout
        self._idle: list[ApiClient] = []
        self._all: list[ApiClient] = []
        self._lock = threading.Lock()
        self._closed = False
        self._early: threading.Thread | None = None
        self._early_hosts: list[HostSummary] | ClientError | None = None

    @contextmanager
    def _client(self) -> Iterator[ApiClient]:
        with self._lock:
            if self._closed:
                raise ServerUnreachable(self.base_url, "the source is closed")
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = ApiClient(
                self.base_url,
                ca=self._ca,
                credentials=self._creds,
                timeout=self._timeout,
                session=self.session,
            )
            with self._lock:
                self._all.append(client)
        try:
            yield client
        finally:
            with self._lock:
                if self._closed:
                    client.close()
                else:
                    self._idle.append(client)

    def _call(self, fn: Callable[[ApiClient], T]) -> T:
        """``fn`` with a pooled client; once more if a refused token was replaced by a new login."""
        with self._client() as c:
            try:
                return fn(c)
            except ApiError as exc:
                if exc.status != 401 or self.session is None or not self.session.adopt_stored():
                    raise
                return fn(c)

    def renew_in(self) -> float | None:
        return None if self.session is None else self.session.renew_in()

    def renew(self) -> None:
        if self.session is not None:
            with self._client() as c:
                self.session.renew(c)

    def adopt_stored_login(self) -> bool:
        return self.session is not None and self.session.adopt_stored()

    def log_in(self, password: str) -> None:
        session = self.session
        if session is None:
            raise ClientError("this reader proves itself with a certificate, not a password")
        with self._client() as c:
            fresh = c.login(password)
        # Kept like `statusdash login` keeps it, so other commands have it too; then taken up.
        if session.store is not None:
            try:
                session.store.save(session.server, fresh.access_token, fresh.expires_in)
            except OSError:
                pass  # not kept: this session still uses it
            else:
                if session.adopt_stored():
                    return
        session.token = fresh.access_token  # renewed on the old schedule: early, never late

    def prefetch(self) -> None:
        """Fetch the fleet in the background now, while the interface is still starting."""

        def fetch() -> None:
            try:
                self._early_hosts = self._call(ApiClient.hosts)
            except ClientError as exc:
                self._early_hosts = exc

        self._early = threading.Thread(target=fetch, name="statusdash-prefetch", daemon=True)
        self._early.start()

    def hosts(self) -> list[HostSummary]:
        early, self._early = self._early, None
        if early is not None:
            early.join(timeout=self._timeout + 1)
            answer, self._early_hosts = self._early_hosts, None
            if isinstance(answer, list):
                return answer
        return self._call(ApiClient.hosts)

    def sentiment(self) -> Sentiment:
        return self._call(ApiClient.sentiment)

    def alerts(self, state: str = "active") -> list[AlertPublic]:
        return self._call(lambda c: c.alerts(state))

    def services(self) -> list[ServiceHealth]:
        return self._call(ApiClient.services)

    def rules(self) -> RulesInForce:
        return self._call(ApiClient.alert_rules)

    def alert_action(self, alert_id: int, action: str) -> None:
        act = ApiClient.resolve_alert if action == "resolve" else ApiClient.ack_alert
        self._call(lambda c: act(c, alert_id))

    def unsilence(self, silence_id: int) -> None:
        self._call(lambda c: c.unsilence(silence_id))

    def silence(self, alert: AlertPublic, for_s: float) -> None:
        a = alert
        self._call(lambda c: c.silence(a.host, a.rule, a.subject or None, for_s, "from the TUI"))

    def silences(self) -> list[dict[str, Any]]:
        return self._call(ApiClient.silences)

    def host(self, host_id: str) -> HostDetail:
        return self._call(lambda c: c.host(host_id))

    def history(self, host_id: str, metric: str, since: str, points: int) -> HistorySeries:
        return self._call(lambda c: c.history(host_id, metric, since=since, points=points))

    def open_stream(self) -> LiveStream | None:
        from statusdash.tui.ws_stream import WebSocketStream  # websockets loads on first use

        return WebSocketStream.connect(
            self.base_url, self._ca, self._creds, self._timeout, self.session
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()


def parse_event(raw: str | bytes) -> StreamEvent | None:
    """A stream message as a ``StreamEvent``; ``None`` for anything not shaped like one."""
    try:
        msg = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        return None
    data = msg.get("data")
    return StreamEvent(msg["type"], data if isinstance(data, dict) else {})


def parse_host(data: dict[str, Any]) -> HostSummary | None:
    """The ``data`` of a ``host.updated`` event as a ``HostSummary``; ``None`` if it is not one."""
    try:
        return HostSummary.model_validate(data)
    except ValueError:
        return None


# --- in memory ------------------------------------------------------------------------------


class QueueStream:
    """A stream fed by ``put`` from another thread (tests, demos)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[StreamEvent | None] = queue.Queue()
        self.closed = False

    def put(self, event: StreamEvent) -> None:
        self.queue.put(event)

    def drop(self) -> None:
        """Make the next ``recv`` fail as if the connection broke."""
        self.queue.put(None)

    def recv(self, timeout: float) -> StreamEvent | None:
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is None:
            raise ServerUnreachable("memory", "stream dropped")
        return item

    def close(self) -> None:
        self.closed = True


@dataclass
class MemorySource:
    """Frozen data from schema models; ``frames`` are successive answers of ``hosts()``.

    Each call of ``hosts()`` moves to the next frame and stays on the last, so a test can feed a
    few polls (filling the sparklines) and then hold still for a deterministic screenshot.
    """

    frames: Sequence[list[HostSummary]]
    sentiment_: Sentiment | None = None
    alerts_: list[AlertPublic] = field(default_factory=list)
    services_: list[ServiceHealth] = field(default_factory=list)
    details: dict[str, HostDetail] = field(default_factory=dict)
    series: Callable[[str, str, str, int], HistorySeries] | None = None
    stream: QueueStream | None = None
    label: str = "memory"
    offline: bool = False
    calls: dict[str, int] = field(default_factory=dict)
    _frame: int = 0
    rules_: RulesInForce | None = None
    silences_: list[dict[str, Any]] = field(default_factory=list)

    def _enter(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.offline:
            raise ServerUnreachable(self.label, "connection refused (offline)")

    @property
    def exhausted(self) -> bool:
        """True once every frame has been served at least once."""
        return self._frame >= len(self.frames)

    def hosts(self) -> list[HostSummary]:
        self._enter("hosts")
        frame = self.frames[min(self._frame, len(self.frames) - 1)] if self.frames else []
        self._frame += 1
        return [h.model_copy() for h in frame]

    def sentiment(self) -> Sentiment:
        self._enter("sentiment")
        if self.sentiment_ is None:
            raise ApiError(404, "not_found", "no sentiment")
        return self.sentiment_

    def alerts(self, state: str = "active") -> list[AlertPublic]:
        self._enter("alerts")
        if state == "all":
            return list(self.alerts_)
        if state == "resolved":
            return [a for a in self.alerts_ if a.state == "resolved"]
        return [a for a in self.alerts_ if a.state != "resolved"]

    def services(self) -> list[ServiceHealth]:
        self._enter("services")
        return list(self.services_)

    def rules(self) -> RulesInForce:
        self._enter("rules")
        if self.rules_ is None:
            raise ApiError(404, "not_found", "no rules")
        return self.rules_

    def alert_action(self, alert_id: int, action: str) -> None:
        self._enter(action)  # counted only: the frozen alerts stay as they are

    def unsilence(self, silence_id: int) -> None:
        self._enter("unsilence")
        self.silences_ = [s for s in self.silences_ if s.get("id") != silence_id]

    def silence(self, alert: AlertPublic, for_s: float) -> None:
        self._enter("silence")
        made = {"id": len(self.silences_) + 1, "host": alert.host, "rule": alert.rule}
        self.silences_.append({**made, "subject": alert.subject})

    def silences(self) -> list[dict[str, Any]]:
        self._enter("silences")
        return list(self.silences_)

    def host(self, host_id: str) -> HostDetail:
        self._enter("host")
        if host_id not in self.details:
            raise ApiError(404, "not_found", f"no host {host_id}")
        return self.details[host_id]

    def history(self, host_id: str, metric: str, since: str, points: int) -> HistorySeries:
        self._enter("history")
        if self.series is None:
            raise ApiError(404, "not_found", "no history")
        return self.series(host_id, metric, since, points)

    def open_stream(self) -> LiveStream | None:
        if self.stream is None:
            return None
        self._enter("stream")
        return self.stream

    def renew_in(self) -> float | None:
        return None

    def renew(self) -> None:
        return None

    def adopt_stored_login(self) -> bool:
        return False

    def log_in(self, password: str) -> None:
        raise ClientError("the in-memory source takes no password")

    def close(self) -> None:
        return None
