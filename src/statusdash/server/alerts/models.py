"""SQLModel tables of the alerting service; times are epoch seconds like the ``hosts`` table."""

from __future__ import annotations

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class AlertRow(SQLModel, table=True):
    """One alert from pending to resolved; at most one open row per rule, host and subject."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_state", "state"),
        Index("ix_alerts_key", "rule", "host", "subject"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(max_length=64)
    host: str = Field(max_length=63)
    subject: str = Field(default="", max_length=255, description="mount, service or ''")
    state: str = Field(max_length=16, description="pending, firing or resolved")
    severity: str = Field(default="warning", max_length=16)
    value: float | None = None
    threshold: float | None = None
    message: str = Field(max_length=2000)
    started_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    acked_at: float | None = None
    acked_by: str | None = Field(default=None, max_length=255)
    notified_firing: bool = Field(default=False, description="firing notice delivered or given up")
    notified_resolved: bool = Field(default=False)
    resolved_by: str | None = Field(default=None, max_length=255, description="who, if by hand")
    resolved_reason: str | None = Field(default=None, max_length=500, description="why, if given")


class SilenceRow(SQLModel, table=True):
    """Mutes firing notifications of the alerts it matches until it expires."""

    __tablename__ = "alert_silences"

    id: int | None = Field(default=None, primary_key=True)
    host: str | None = Field(default=None, max_length=63, description="glob; None matches all")
    rule: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, max_length=255)
    created_at: float
    expires_at: float = Field(index=True)
    created_by: str = Field(default="", max_length=255)
    comment: str = Field(default="", max_length=500)


class ServiceRow(SQLModel, table=True):
    """The latest health event of a service on a host; the in-memory map is rebuilt from these."""

    __tablename__ = "service_health"
    __table_args__ = (Index("ux_service_health", "host", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    host: str = Field(max_length=63)
    name: str = Field(max_length=255)
    status: str = Field(max_length=16, description="healthy or unhealthy, as last reported")
    checked_at: float | None = None
    received_at: float
    expected_s: float = Field(description="seconds without news before the status is unknown")
    metrics: str = Field(default="{}", description="JSON object")
    error: str | None = Field(default=None, max_length=2000)


class NotificationFailure(SQLModel, table=True):
    """A webhook delivery that failed every retry."""

    __tablename__ = "notification_failures"

    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    target: str = Field(max_length=255, description="URL with its secret parts masked")
    format: str = Field(max_length=16)
    event: str = Field(max_length=32, description="firing, resolved or test")
    alert_id: int | None = None
    attempts: int
    error: str = Field(max_length=1000)


class MaintenanceRow(SQLModel, table=True):
    """A one-off maintenance window: alerts of hosts with the tag are kept but not sent."""

    __tablename__ = "maintenance_windows"

    id: int | None = Field(default=None, primary_key=True)
    tag_key: str = Field(max_length=63)
    tag_value: str = Field(max_length=128)
    starts_at: float
    ends_at: float = Field(index=True)
    reason: str = Field(default="", max_length=500)
    created_by: str = Field(default="", max_length=255)
    created_at: float
