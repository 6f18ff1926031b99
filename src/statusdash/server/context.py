"""``ServerContext``: every service of one app, typed, built once by ``create_app``.

It is the only thing kept on ``app.state`` (as ``app.state.ctx``); routes get it, or one of its
parts, through the ``Annotated`` dependencies in ``server/deps.py``. The context is immutable:
set-up that changes a part before the app starts (mTLS, the tests' alerting with a fake clock)
attaches a new context with ``dataclasses.replace``, so nothing holds a half-changed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import FastAPI

from statusdash.server.prom import ServerMetrics

if TYPE_CHECKING:
    from statusdash.server.alerts.service import AlertService
    from statusdash.server.auth import Auth
    from statusdash.server.db import Readers
    from statusdash.server.health_events import HealthEvents, ServiceMap
    from statusdash.server.jobs import ServerJobs
    from statusdash.server.mtls import ServerTLS
    from statusdash.server.notify import Notifier
    from statusdash.server.storage import Storage
    from statusdash.server.stream import Broadcaster
    from statusdash.server.tags import Tags
    from statusdash.settings import Settings


@dataclass(frozen=True, slots=True)
class Alerting:
    """The alerting services, built together because they feed each other."""

    service: AlertService
    hub: Broadcaster
    notifier: Notifier
    health: HealthEvents
    services: ServiceMap


@dataclass(frozen=True, slots=True)
class ServerContext:
    """What the routes and the lifespan reach: settings, storage, auth, alerting, jobs, TLS."""

    settings: Settings
    storage: Storage
    readers: Readers
    auth: Auth
    alerting: Alerting
    jobs: ServerJobs
    tags: Tags  # host tags: the agent's with the server's on top (server/tags.py)
    tls: ServerTLS | None = None  # set by ``mtls_setup`` when the server serves HTTPS
    metrics: ServerMetrics = field(default_factory=ServerMetrics)  # GET /metrics, this app's


def attach(app: FastAPI, ctx: ServerContext) -> None:
    """Make ``ctx`` the app's context (replacing the one before, if any)."""
    app.state.ctx = ctx


def context_of(app: FastAPI) -> ServerContext:
    """The app's context; a ``RuntimeError`` for an app that ``create_app`` did not build."""
    ctx = getattr(app.state, "ctx", None)
    if not isinstance(ctx, ServerContext):
        raise RuntimeError("this app has no ServerContext; build it with create_app(settings)")
    return ctx
