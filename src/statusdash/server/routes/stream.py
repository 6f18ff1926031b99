"""``WS /api/stream``: live host, alert and service changes pushed to every reader.

The hub (``server/stream.py``) keeps one bounded queue per reader; this route pumps a reader's
queue to its socket and notices when the reader goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from statusdash.server.deps import HubDep, ReaderDep
from statusdash.server.stream import SEND_TIMEOUT_S, Subscriber

log = logging.getLogger(__name__)

router = APIRouter(tags=["stream"])


async def _pump(ws: WebSocket, sub: Subscriber) -> None:
    while True:
        text = await sub.next()
        if text is None:
            await ws.close(code=1013, reason="too slow; reconnect and resync")
            return
        async with asyncio.timeout(SEND_TIMEOUT_S):  # no task per message, unlike wait_for
            await ws.send_text(text)


async def _listen(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await ws.receive_text()


@router.websocket("/api/stream")
async def stream(websocket: WebSocket, reader: ReaderDep, hub: HubDep) -> None:
    """Live changes; the first message is ``hello``, then host/alert/service events."""
    sub = hub.subscribe()  # before the hello, so nothing published after it is missed
    try:
        await websocket.accept()
        hello = {"type": "hello", "data": {"reader": reader.name, "queue": hub.queue_size}}
        await websocket.send_text(json.dumps(hello))
        tasks = {
            asyncio.create_task(_pump(websocket, sub)),
            asyncio.create_task(_listen(websocket)),
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
        hub.unsubscribe(sub)
