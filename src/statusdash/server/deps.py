"""Typed route dependencies: each route names what it needs, as ``Annotated`` aliases.

Every one reads the app's ``ServerContext`` (``server/context.py``) in one step, not through a
chain of dependencies, because the ingest routes are hot; they are ``async`` so FastAPI calls
them on the event loop instead of sending each to a thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from statusdash.server.alerts.service import AlertService
from statusdash.server.auth import Auth, Principal, require_agent, require_reader
from statusdash.server.context import ServerContext, context_of
from statusdash.server.db import Readers
from statusdash.server.health_events import HealthEvents, ServiceMap
from statusdash.server.notify import Notifier
from statusdash.server.storage import Storage
from statusdash.server.stream import Broadcaster
from statusdash.settings import Settings


async def _ctx(conn: HTTPConnection) -> ServerContext:
    return context_of(conn.app)


async def _settings(conn: HTTPConnection) -> Settings:
    return context_of(conn.app).settings


async def _storage(conn: HTTPConnection) -> Storage:
    return context_of(conn.app).storage


async def _readers(conn: HTTPConnection) -> Readers:
    return context_of(conn.app).readers


async def _auth(conn: HTTPConnection) -> Auth:
    return context_of(conn.app).auth


async def _alerts(conn: HTTPConnection) -> AlertService:
    return context_of(conn.app).alerting.service


async def _notifier(conn: HTTPConnection) -> Notifier:
    return context_of(conn.app).alerting.notifier


async def _health(conn: HTTPConnection) -> HealthEvents:
    return context_of(conn.app).alerting.health


async def _services(conn: HTTPConnection) -> ServiceMap:
    return context_of(conn.app).alerting.services


async def _hub(conn: HTTPConnection) -> Broadcaster:
    return context_of(conn.app).alerting.hub


CtxDep = Annotated[ServerContext, Depends(_ctx)]
SettingsDep = Annotated[Settings, Depends(_settings)]
StorageDep = Annotated[Storage, Depends(_storage)]
ReadersDep = Annotated[Readers, Depends(_readers)]
AuthDep = Annotated[Auth, Depends(_auth)]
AlertsDep = Annotated[AlertService, Depends(_alerts)]
NotifierDep = Annotated[Notifier, Depends(_notifier)]
HealthDep = Annotated[HealthEvents, Depends(_health)]
ServicesDep = Annotated[ServiceMap, Depends(_services)]
HubDep = Annotated[Broadcaster, Depends(_hub)]
# The access guards: every route names one of these (or ``public``/``login_route``).
ReaderDep = Annotated[Principal, Depends(require_reader)]
AgentDep = Annotated[Principal, Depends(require_agent)]
