"""The alerting service's knobs, read from ``Settings`` (where their defaults live)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from statusdash.schema import utcnow
from statusdash.server.notify import Target, parse_targets
from statusdash.server.notify_apprise import AppriseTarget, parse_notify_urls
from statusdash.server.notify_group import GroupPolicy
from statusdash.settings import Settings


@dataclass(frozen=True)
class AlertingConfig:
    """Everything alerting needs beyond the thresholds; ``clock`` is replaceable in tests."""

    rules_file: Path | None
    webhooks: list[Target]
    check_interval_s: float  # offline detection, service staleness, silence expiry
    start_grace_s: float  # after start, hosts not heard from since are not judged offline
    service_expect_s: float  # a service silent this long is unknown (if it names none)
    stream_queue: int  # messages a WebSocket reader may lag behind
    webhook_attempts: int
    webhook_backoff_s: float
    webhook_timeout_s: float
    max_event_alerts_per_host: int  # open event-driven alerts per host
    max_services_per_host: int  # tracked services per host
    webhook_queue: int  # notices queued for delivery
    webhook_concurrency: int  # notices delivered at once
    grouping: GroupPolicy  # grouped notifications (server/notify_group.py)
    notify: list[AppriseTarget] = field(default_factory=list)  # NOTIFY_URLS
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # NOTIFY_ROUTES
    notify_deadline_s: float = 30.0
    notify_max_hung: int = 4
    maintenance_max: int = 1000  # windows open or planned at once
    public_url: str | None = None  # notices link to it; else they name the CLI command
    notify_grace_s: float = 2.0  # at shutdown, for deliveries in flight (unsent ones resume)
    clock: Callable[[], datetime] = field(default=utcnow)
    handle_sighup: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertingConfig:
        """The config the settings describe (docs/alerts.md has the names)."""
        return cls(
            rules_file=settings.alert_rules_file,
            webhooks=parse_targets(settings.webhook_urls),
            check_interval_s=settings.alert_check_interval_s,
            start_grace_s=settings.alert_start_grace_s,
            service_expect_s=settings.service_expect_s,
            stream_queue=settings.stream_queue_size,
            webhook_attempts=settings.webhook_attempts,
            webhook_backoff_s=settings.webhook_backoff_s,
            webhook_timeout_s=settings.webhook_timeout_s,
            max_event_alerts_per_host=settings.max_event_alerts_per_host,
            max_services_per_host=settings.max_services_per_host,
            webhook_queue=settings.webhook_queue_size,
            webhook_concurrency=settings.webhook_concurrency,
            grouping=GroupPolicy.from_settings(settings),
            notify=parse_notify_urls(
                settings.notify_urls.get_secret_value() if settings.notify_urls else None
            ),
            routes=parse_routes(settings.notify_routes),
            notify_deadline_s=settings.notify_deadline_s,
            notify_max_hung=settings.notify_max_hung,
            maintenance_max=settings.maintenance_max_windows,
            public_url=settings.public_url.rstrip("/") if settings.public_url else None,
        )

    @property
    def target_names(self) -> frozenset[str]:
        """The route names NOTIFY_URLS gives (``default`` for an entry without one)."""
        return frozenset(t.name for t in self.notify)


def parse_routes(spec: str) -> dict[str, tuple[str, ...]]:
    """``"critical=pager,chat warning=chat"`` as ``{"critical": ("pager", "chat"), ...}``
    (``Settings`` has checked its form); ``info=`` routes info alerts nowhere."""
    routes: dict[str, tuple[str, ...]] = {}
    for part in spec.replace(";", " ").split():
        severity, _, names = part.partition("=")
        routes[severity] = tuple(n for n in names.split(",") if n)
    return routes
