"""The alerting services (alerts, service health, the live stream, webhooks), built together.

``build_alerting`` makes them for ``create_app``; ``install_alerting(app, **changes)`` replaces
them on a built app before it starts, from the settings' config with ``changes`` applied (the
tests use it for a controllable clock and short intervals). The routes stay; the storage
listener moves to the new service; the app's context is replaced with one that names them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from statusdash.server.alerts.config import AlertingConfig
from statusdash.server.alerts.service import AlertService
from statusdash.server.alerts.store import AlertStore
from statusdash.server.context import Alerting, attach, context_of
from statusdash.server.health_events import HealthEvents, ServiceMap
from statusdash.server.notify import Notice, Notifier, Target
from statusdash.server.storage import Storage
from statusdash.server.stream import Broadcaster
from statusdash.server.tags import connect_alerting
from statusdash.settings import Settings


def build_alerting(settings: Settings, storage: Storage, cfg: AlertingConfig) -> Alerting:
    """The alerting services over ``storage``, listening to its commits."""
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
        max_queue=cfg.webhook_queue,
        concurrency=cfg.webhook_concurrency,
        on_failure=record_failure,
        grouping=cfg.grouping,
    )
    thresholds = (settings.cpu_threshold, settings.memory_threshold, settings.disk_threshold)
    service = AlertService(cfg, thresholds, storage, store, hub, notifier, settings.retention_days)
    services = ServiceMap(cfg.clock)
    health = HealthEvents(services, service, store, hub, cfg.service_expect_s)
    service.on_tick.append(health.sweep)
    storage.listeners.append(service.on_commit)
    return Alerting(service, hub, notifier, health, services)


def install_alerting(app: FastAPI, **changes: Any) -> Alerting:
    """Replace the app's alerting services with ones built from the config plus ``changes``."""
    ctx = context_of(app)
    cfg = replace(AlertingConfig.from_settings(ctx.settings), **changes)
    ctx.storage.listeners.remove(ctx.alerting.service.on_commit)
    alerting = build_alerting(ctx.settings, ctx.storage, cfg)
    connect_alerting(alerting, ctx.tags)
    attach(app, replace(ctx, alerting=alerting))
    return alerting
