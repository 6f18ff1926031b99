"""Overall sentiment in the seed's shape: healthy, degraded or unhealthy."""

from __future__ import annotations

from datetime import datetime

from statusdash.schema import Sentiment, Thresholds
from statusdash.server.context import ServerContext
from statusdash.wire import HealthStatus


def sentiment(ctx: ServerContext, now: datetime) -> Sentiment:
    """Unhealthy if a host is down or a service unhealthy; degraded if anything is off."""
    counts = ctx.storage.cache.counts(now)
    services = ctx.alerting.services.all()
    alerts_active = ctx.alerting.service.firing_count()
    if counts.down or any(s.status == HealthStatus.unhealthy for s in services):
        status = "unhealthy"
    elif counts.stale or alerts_active or any(s.status != HealthStatus.healthy for s in services):
        status = "degraded"
    else:
        status = "healthy"
    s = ctx.settings
    thresholds = Thresholds(cpu=s.cpu_threshold, memory=s.memory_threshold, disk=s.disk_threshold)
    return Sentiment(
        status=status,
        services=services,
        hosts=counts,
        alerts_active=alerts_active,
        thresholds=thresholds,
    )
