"""``WS /api/stream``: live host, alert and service changes pushed to every reader.

The hub (``server/stream.py``) keeps one bounded queue per reader; this route pumps a reader's
queue to its socket and notices when the reader goes away. The reader's credentials are
re-checked while it listens: a revoked certificate or an expired token closes it (1008). A
reader that renews its token sends ``{"type": "auth", "token": ...}`` and its stream lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from statusdash.server.auth import Auth, Principal
from statusdash.server.deps import AuthDep, HubDep, ReaderDep, SettingsDep
from statusdash.server.errors import ApiError
from statusdash.server.stream import (
    GOING_AWAY,
    POLICY_VIOLATION,
    SEND_TIMEOUT_S,
    Closing,
    Grant,
    Subscriber,
)

log = logging.getLogger(__name__)

router = APIRouter(tags=["stream"])


async def _pump(ws: WebSocket, sub: Subscriber) -> None:
    while True:
        text = await sub.next()
        if text is None:
            await ws.close(code=sub.closing.code, reason=sub.closing.reason)
            return
        async with asyncio.timeout(SEND_TIMEOUT_S):  # no task per message, unlike wait_for
            await ws.send_text(text)


def grant_of(p: Principal) -> Grant:
    return Grant(expires_at=p.expires_at, serial=p.serial)


async def _listen(ws: WebSocket, sub: Subscriber, auth: Auth, reader: Principal) -> None:
    """Read what the client sends, to notice when it goes away; a renewed token extends it."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            text = await ws.receive_text()
            if reader.via != "token" or '"auth"' not in text:
                continue
            try:
                msg = json.loads(text)
                renewed = auth.verify_token(str(msg["token"]))
            except (ValueError, KeyError, TypeError, ApiError) as exc:
                detail = exc.detail if isinstance(exc, ApiError) else "bad auth message"
                sub.end(Closing(POLICY_VIOLATION, detail[:120]))
                continue
            sub.grant = grant_of(renewed)


@router.websocket("/api/stream")
async def stream(
    websocket: WebSocket, reader: ReaderDep, hub: HubDep, auth: AuthDep, settings: SettingsDep
) -> None:
    """Live changes; the first message is ``hello``, then host/alert/service events."""
    sub = hub.subscribe(grant_of(reader))  # before the hello: nothing published after is missed
    hub.watch_grants(auth.is_revoked, settings.stream_recheck_s)
    hub.opened()
    if hub.closing:  # the server is shutting down: accept only to say so
        sub.end(GOING_AWAY)
    try:
        await websocket.accept()
        hello = {"type": "hello", "data": {"reader": reader.name, "queue": hub.queue_size}}
        await websocket.send_text(json.dumps(hello))
        tasks = {
            asyncio.create_task(_pump(websocket, sub)),
            asyncio.create_task(_listen(websocket, sub, auth, reader)),
        }
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in done:
            exc = t.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect | TimeoutError):
                log.info("stream to %s ended: %r", reader.name, exc)
    except WebSocketDisconnect:
        pass
    finally:
        hub.ended_stream()
        hub.unsubscribe(sub)
