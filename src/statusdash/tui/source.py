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
from typing import Any, Protocol

from statusdash.client import ApiClient, ApiError, ClientError, Credentials, ServerUnreachable
from statusdash.schema import (
    AlertPublic,
    HistorySeries,
    HostDetail,
    HostSummary,
    Sentiment,
    ServiceHealth,
)

STREAM_PATH = "/api/stream"


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

    def host(self, host_id: str) -> HostDetail: ...

    def history(self, host_id: str, metric: str, since: str, points: int) -> HistorySeries: ...

    def open_stream(self) -> LiveStream | None: ...

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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.label = self.base_url
        self._ca = ca
        self._creds = credentials or Credentials()
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
                self.base_url, ca=self._ca, credentials=self._creds, timeout=self._timeout
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

    def prefetch(self) -> None:
        """Fetch the fleet in the background now, while the interface is still starting."""

        def fetch() -> None:
            try:
                with self._client() as c:
                    self._early_hosts = c.hosts()
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
        with self._client() as c:
            return c.hosts()

    def sentiment(self) -> Sentiment:
        with self._client() as c:
            return c.sentiment()

    def alerts(self, state: str = "active") -> list[AlertPublic]:
        with self._client() as c:
            return c.alerts(state)

    def services(self) -> list[ServiceHealth]:
        with self._client() as c:
            return c.services()

    def host(self, host_id: str) -> HostDetail:
        with self._client() as c:
            return c.host(host_id)

    def history(self, host_id: str, metric: str, since: str, points: int) -> HistorySeries:
        with self._client() as c:
            return c.history(host_id, metric, since=since, points=points)

    def open_stream(self) -> LiveStream | None:
        return _WebSocketStream.connect(self.base_url, self._ca, self._creds, self._timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()


class _WebSocketStream:
    """``WS /api/stream`` through the sync websockets client, authenticated like ``ApiClient``."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    @classmethod
    def connect(
        cls, base_url: str, ca: Path | None, creds: Credentials, timeout: float
    ) -> _WebSocketStream:
        from websockets.exceptions import InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        from statusdash.tlsclient import client_context

        url = "ws" + base_url.removeprefix("http") + STREAM_PATH
        ssl_ctx = client_context(ca, creds.cert, creds.key) if url.startswith("wss") else None
        headers = {"Authorization": f"Bearer {creds.token}"} if creds.token else {}
        try:
            ws = connect(
                url,
                ssl=ssl_ctx,
                additional_headers=headers,
                open_timeout=timeout,
                proxy=None,
                max_size=2**22,
                legacy=True,  # connect now and hand back the connection (websockets 17)
            )
        except InvalidStatus as exc:
            # Starlette answers 403 both for a missing WebSocket route and for refused
            # credentials; either way the TUI polls, and the poll reports auth problems.
            status = exc.response.status_code
            raise StreamUnavailable(f"no stream (HTTP {status})") from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ServerUnreachable(base_url, str(exc) or type(exc).__name__) from exc
        return cls(ws)

    def recv(self, timeout: float) -> StreamEvent | None:
        from websockets.exceptions import WebSocketException

        try:
            raw = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except (OSError, WebSocketException) as exc:
            raise ServerUnreachable("stream", str(exc) or type(exc).__name__) from exc
        return parse_event(raw)

    def close(self) -> None:
        self._ws.close()


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

    def close(self) -> None:
        return None
