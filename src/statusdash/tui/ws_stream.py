"""The live stream over a real socket: ``WS /api/stream`` through the sync websockets client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from statusdash.client import Credentials, LoginExpired, ServerUnreachable, TokenSession
from statusdash.tui.source import STREAM_PATH, StreamEvent, StreamUnavailable, parse_event


class WebSocketStream:
    """``WS /api/stream`` through the sync websockets client, authenticated like ``ApiClient``.

    The token goes in the ``Authorization`` header, never the URL; when the session renews it,
    the new one is sent on the socket (``{"type": "auth"}``) so the server keeps the stream open.
    """

    def __init__(self, ws: Any, session: TokenSession | None = None) -> None:
        self._ws = ws
        self._session = session
        self._sent = session.token if session is not None else None

    @classmethod
    def connect(
        cls,
        base_url: str,
        ca: Path | None,
        creds: Credentials,
        timeout: float,
        session: TokenSession | None = None,
    ) -> WebSocketStream:
        from websockets.exceptions import InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        from statusdash.tlsclient import client_context

        url = "ws" + base_url.removeprefix("http") + STREAM_PATH
        ssl_ctx = client_context(ca, creds.cert, creds.key) if url.startswith("wss") else None
        token = session.token if session is not None else creds.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
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
        return cls(ws, session)

    def recv(self, timeout: float) -> StreamEvent | None:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        try:
            if self._session is not None and self._session.token != self._sent:
                self._sent = self._session.token
                self._ws.send(json.dumps({"type": "auth", "token": self._sent}))
            raw = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == 1008:  # our credentials ended
                raise LoginExpired(f"stream closed: {exc.rcvd.reason}") from exc
            raise ServerUnreachable("stream", str(exc) or type(exc).__name__) from exc
        except (OSError, WebSocketException) as exc:
            raise ServerUnreachable("stream", str(exc) or type(exc).__name__) from exc
        return parse_event(raw)

    def close(self) -> None:
        self._ws.close()
