"""The alerting service's knobs, read from Settings when it has them, else from defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from statusdash.schema import utcnow
from statusdash.server.notify import Target, parse_targets


@dataclass
class AlertingConfig:
    """Everything alerting needs beyond the thresholds; ``clock`` is replaceable in tests."""

    rules_file: Path | None = None
    webhooks: list[Target] = field(default_factory=list)
    check_interval_s: float = 5.0  # offline detection, service staleness, silence expiry
    service_expect_s: float = 180.0  # a service silent this long is unknown (if it names none)
    stream_queue: int = 1024  # messages a WebSocket reader may lag behind
    webhook_attempts: int = 5
    webhook_backoff_s: float = 1.0
    webhook_timeout_s: float = 10.0
    notify_grace_s: float = 2.0  # at shutdown, for deliveries in flight (unsent ones resume)
    clock: Callable[[], datetime] = utcnow
    handle_sighup: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> AlertingConfig:
        """The config from the optional Settings fields (see docs/alerts.md for the names)."""
        d = cls()
        rules = getattr(settings, "alert_rules_file", None)
        hooks = getattr(settings, "webhook_urls", None)
        return cls(
            rules_file=Path(rules) if rules else None,
            webhooks=parse_targets(hooks),
            check_interval_s=float(getattr(settings, "alert_check_interval_s", d.check_interval_s)),
            service_expect_s=float(getattr(settings, "service_expect_s", d.service_expect_s)),
            stream_queue=int(getattr(settings, "stream_queue_size", d.stream_queue)),
            webhook_attempts=int(getattr(settings, "webhook_attempts", d.webhook_attempts)),
            webhook_backoff_s=float(getattr(settings, "webhook_backoff_s", d.webhook_backoff_s)),
            webhook_timeout_s=float(getattr(settings, "webhook_timeout_s", d.webhook_timeout_s)),
        )
