"""``install_alerting(app)``: alerts, service health, the live stream and webhooks in one call.

Call it inside ``create_app`` after ``app.state.storage`` exists and before the route-guard
check. It includes the routers, adds the storage listener, sets ``app.state.services`` and
``app.state.alerts_active`` (read by the sentiment), and adds the startup and shutdown hooks.
Called again before the app starts, it replaces the services with ones built from the new
config (the tests do this to get a controllable clock and short intervals).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from statusdash.server.alerts.config import AlertingConfig
from statusdash.server.alerts.service import AlertService
from statusdash.server.alerts.store import AlertStore
from statusdash.server.health_events import HealthEvents, ServiceMap
from statusdash.server.notify import Notice, Notifier, Target
from statusdash.server.routes import alerts as alert_routes
from statusdash.server.routes import events as event_routes
from statusdash.server.routes import services as service_routes
from statusdash.server.storage import Storage
from statusdash.server.stream import Broadcaster
from statusdash.server.stream import router as stream_router


def install_alerting(app: FastAPI, config: AlertingConfig | None = None) -> None:
    """Wire the alerting services into ``app``; ``config`` defaults to the app's settings."""
    settings = app.state.settings
    cfg = config or AlertingConfig.from_settings(settings)
    storage: Storage = app.state.storage
    store = AlertStore(settings.db_path, settings.db_synchronous)
    hub = Broadcaster(cfg.stream_queue)

    async def record_failure(target: Target, notice: Notice, attempts: int, error: str) -> None:
        alert_id = notice.alert.id if notice.alert else None
        now = datetime.now(UTC)
        await store.call(
            store.record_failure,
            now,
            target.masked,
            target.format,
            notice.event,
            alert_id,
            attempts,
            error,
        )

    notifier = Notifier(
        cfg.webhooks,
        attempts=cfg.webhook_attempts,
        backoff_s=cfg.webhook_backoff_s,
        timeout_s=cfg.webhook_timeout_s,
        on_failure=record_failure,
    )
    thresholds = (settings.cpu_threshold, settings.memory_threshold, settings.disk_threshold)
    alerting = AlertService(cfg, thresholds, storage, store, hub, notifier, settings.retention_days)
    services = ServiceMap(cfg.clock)
    health = HealthEvents(services, alerting, store, hub, cfg.service_expect_s)
    alerting.on_tick.append(health.sweep)

    previous = getattr(app.state, "alerting_install", None)
    if previous is not None:  # a second call: swap the services, keep the routes
        old_listener, old_start, old_stop = previous
        storage.listeners.remove(old_listener)
        app.state.on_startup.remove(old_start)
        app.state.on_shutdown.remove(old_stop)
    else:
        for router in (alert_routes.router, event_routes.router, service_routes.router):
            app.include_router(router)
        app.include_router(stream_router)

    app.state.stream = hub
    app.state.notifier = notifier
    app.state.alerting = alerting
    app.state.health_events = health
    app.state.services = services
    app.state.alerts_active = alerting.firing_count
    app.state.host_alerts = alerting.for_host  # (host) -> list[AlertPublic], for HostDetail
    app.state.host_alerts_active = alerting.engine.firing_count  # (host) -> int, for summaries
    storage.listeners.append(alerting.on_commit)

    async def start(_: FastAPI) -> None:
        await alerting.start()
        await health.start()

    async def stop(_: FastAPI) -> None:
        await alerting.stop()

    app.state.on_startup.append(start)
    app.state.on_shutdown.append(stop)
    app.state.alerting_install = (alerting.on_commit, start, stop)
