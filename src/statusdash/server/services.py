"""Overall sentiment in the seed's shape: healthy, degraded or unhealthy."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI

from statusdash.schema import HealthStatus, Sentiment, ServiceHealth, Thresholds
from statusdash.server.storage import Storage


def service_list(app: FastAPI) -> list[ServiceHealth]:
    """The service health map; filled by the health-events service when it is installed."""
    source = getattr(app.state, "services", None)
    if source is None:
        return []
    services: list[ServiceHealth] = source.all()
    return services


def sentiment(app: FastAPI, now: datetime) -> Sentiment:
    storage: Storage = app.state.storage
    counts = storage.cache.counts(now)
    services = service_list(app)
    alerts_active = int(getattr(app.state, "alerts_active", lambda: 0)())
    if counts.down or any(s.status == HealthStatus.unhealthy for s in services):
        status = "unhealthy"
    elif counts.stale or alerts_active or any(s.status != HealthStatus.healthy for s in services):
        status = "degraded"
    else:
        status = "healthy"
    s = app.state.settings
    thresholds = Thresholds(cpu=s.cpu_threshold, memory=s.memory_threshold, disk=s.disk_threshold)
    return Sentiment(
        status=status,
        services=services,
        hosts=counts,
        alerts_active=alerts_active,
        thresholds=thresholds,
    )
