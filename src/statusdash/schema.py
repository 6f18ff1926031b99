"""The wire schema: one module shared by agent, server, CLI and TUI.

Compatibility rule (see docs/wire-schema.md): within a schema version, unknown fields are
ignored so that a newer agent can add fields without breaking an older server; a report with a
``schema_version`` newer than this module knows is refused, because its meaning may differ.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

SCHEMA_VERSION = 1
HOST_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
HOST_ID_PATTERN = HOST_ID_RE.pattern
MAX_FUTURE = timedelta(minutes=5)

# Body caps, enforced by the server before any JSON is parsed.
MAX_REPORT_BYTES = 256 * 1024
MAX_BATCH_BYTES = 16 * 1024 * 1024
MAX_BATCH_REPORTS = 2000

Percent = Annotated[float, Field(ge=0, le=100)]
NonNeg = Annotated[float, Field(ge=0)]
Bytes = Annotated[int, Field(ge=0)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
HostId = Annotated[str, Field(pattern=HOST_ID_PATTERN, max_length=63)]


class _Wire(BaseModel):
    """Base of every wire model: finite numbers only, unknown fields ignored."""

    model_config = ConfigDict(
        extra="ignore",
        allow_inf_nan=False,
        populate_by_name=True,
        frozen=False,
    )


class SystemInfo(_Wire):
    hostname: Name
    os: str = Field(default="", max_length=255, description="pretty OS name, e.g. Debian 12")
    kernel: str = Field(default="", max_length=255)
    arch: str = Field(default="", max_length=64)
    boot_time: datetime | None = None
    cpu_count: int = Field(default=1, ge=1, le=65536)


class CpuStats(_Wire):
    percent: Percent = Field(description="total CPU busy, %")
    per_core: list[Percent] = Field(default_factory=list, max_length=4096)
    iowait: Percent | None = Field(default=None, description="% of time waiting on IO (Linux)")
    steal: Percent | None = Field(default=None, description="% stolen by the hypervisor")


class LoadAvg(_Wire):
    """Load averages; on the wire the keys are ``1m``, ``5m`` and ``15m``."""

    m1: NonNeg = Field(alias="1m")
    m5: NonNeg = Field(alias="5m")
    m15: NonNeg = Field(alias="15m")


class Memory(_Wire):
    percent: Percent
    total: Bytes
    used: Bytes
    available: Bytes


class Swap(_Wire):
    percent: Percent
    total: Bytes
    used: Bytes


class Disk(_Wire):
    mount: Name
    fstype: str = Field(default="", max_length=64)
    device: str = Field(default="", max_length=255)
    total: Bytes
    used: Bytes
    percent: Percent


class DiskIORate(_Wire):
    read_bytes_s: NonNeg = 0.0
    write_bytes_s: NonNeg = 0.0
    read_ops_s: NonNeg = 0.0
    write_ops_s: NonNeg = 0.0


class DiskIO(_Wire):
    """Rates per second, summed over devices; ``None`` on the agent's first sample."""

    read_bytes_s: NonNeg | None = None
    write_bytes_s: NonNeg | None = None
    devices: dict[str, DiskIORate] = Field(default_factory=dict, max_length=1024)


class NetRate(_Wire):
    rx_bytes_s: NonNeg = 0.0
    tx_bytes_s: NonNeg = 0.0
    rx_packets_s: NonNeg = 0.0
    tx_packets_s: NonNeg = 0.0
    errors_s: NonNeg = 0.0
    drops_s: NonNeg = 0.0


class Net(_Wire):
    """Rates per second, summed over interfaces but loopback; ``None`` on the first sample."""

    rx_bytes_s: NonNeg | None = None
    tx_bytes_s: NonNeg | None = None
    interfaces: dict[str, NetRate] = Field(default_factory=dict, max_length=1024)


class Temperature(_Wire):
    sensor: Name
    label: str = Field(default="", max_length=255)
    current: float = Field(ge=-273.15, le=1000)
    high: float | None = Field(default=None, ge=-273.15, le=1000)
    critical: float | None = Field(default=None, ge=-273.15, le=1000)


class ProcessInfo(_Wire):
    pid: int = Field(ge=0)
    name: str = Field(max_length=255)
    user: str = Field(default="", max_length=255)
    cpu_percent: NonNeg = Field(description="% of one core; can exceed 100 on several cores")
    memory_percent: Percent
    rss: Bytes = 0


class Processes(_Wire):
    count: int = Field(ge=0)
    top_cpu: list[ProcessInfo] = Field(default_factory=list, max_length=50)
    top_memory: list[ProcessInfo] = Field(default_factory=list, max_length=50)


class HealthStatus(StrEnum):
    healthy = "healthy"
    unhealthy = "unhealthy"
    unknown = "unknown"


class ServiceCheckResult(_Wire):
    """The result of one of the host's service checks (services.yaml)."""

    name: Name
    kind: str = Field(default="", max_length=32, description="http, tcp, process or systemd")
    status: HealthStatus
    checked_at: datetime
    latency_ms: NonNeg | None = None
    detail: str = Field(default="", max_length=2000)


class MetricsReport(_Wire):
    """One collection cycle of one host."""

    schema_version: int = Field(ge=1)
    report_id: uuid.UUID
    host: HostId
    collected_at: datetime
    interval_s: float = Field(gt=0, le=86400)
    system: SystemInfo | None = None
    cpu: CpuStats | None = None
    load: LoadAvg | None = None
    memory: Memory | None = None
    swap: Swap | None = None
    disks: list[Disk] = Field(default_factory=list, max_length=512)
    disk_io: DiskIO | None = None
    net: Net | None = None
    temps: list[Temperature] = Field(default_factory=list, max_length=512)
    processes: Processes | None = None
    services: list[ServiceCheckResult] = Field(default_factory=list, max_length=512)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v > SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is newer than this server understands")
        return v

    @field_validator("collected_at")
    @classmethod
    def _collected_at_window(cls, v: datetime, info: ValidationInfo) -> datetime:
        if v.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-11-27T10:00:00Z")
        v = v.astimezone(UTC)
        ctx = info.context or {}
        now: datetime = ctx.get("now") or datetime.now(UTC)
        if v > now + MAX_FUTURE:
            raise ValueError("is more than 5 minutes in the future; check the agent's clock")
        horizon: timedelta | None = ctx.get("max_age")
        if horizon is not None and v < now - horizon:
            raise ValueError(f"is older than the retention horizon ({horizon.days} days)")
        return v

    @property
    def worst_disk(self) -> Disk | None:
        return worst_disk(self.disks)


class MetricsBatch(_Wire):
    reports: list[MetricsReport] = Field(min_length=1, max_length=MAX_BATCH_REPORTS)


class IngestAck(BaseModel):
    accepted: int
    duplicates: int


# --- metrics kept as history series: dotted path -> how to read it from a report -------------

HISTORY_METRICS: dict[str, str] = {
    "cpu.percent": "CPU busy, %",
    "cpu.iowait": "CPU waiting on IO, %",
    "memory.percent": "memory used, %",
    "swap.percent": "swap used, %",
    "load.1m": "load average, 1 minute",
    "load.5m": "load average, 5 minutes",
    "load.15m": "load average, 15 minutes",
    "disk.percent": "fullest real filesystem, %",
    "net.rx_bytes_s": "network received, bytes/s",
    "net.tx_bytes_s": "network sent, bytes/s",
    "disk_io.read_bytes_s": "disk read, bytes/s",
    "disk_io.write_bytes_s": "disk written, bytes/s",
    "processes.count": "processes",
}


def worst_disk(disks: list[Disk]) -> Disk | None:
    """The fullest filesystem."""
    return max(disks, key=lambda d: d.percent, default=None)


def metric_values(r: MetricsReport) -> dict[str, float | None]:
    """The history series values of one report, keyed by the names of ``HISTORY_METRICS``.

    Reads attributes only, so the server's fast decoder's structs (same names) work as well.
    """
    worst = worst_disk(r.disks)
    return {
        "cpu.percent": r.cpu.percent if r.cpu else None,
        "cpu.iowait": r.cpu.iowait if r.cpu else None,
        "memory.percent": r.memory.percent if r.memory else None,
        "swap.percent": r.swap.percent if r.swap else None,
        "load.1m": r.load.m1 if r.load else None,
        "load.5m": r.load.m5 if r.load else None,
        "load.15m": r.load.m15 if r.load else None,
        "disk.percent": worst.percent if worst else None,
        "net.rx_bytes_s": r.net.rx_bytes_s if r.net else None,
        "net.tx_bytes_s": r.net.tx_bytes_s if r.net else None,
        "disk_io.read_bytes_s": r.disk_io.read_bytes_s if r.disk_io else None,
        "disk_io.write_bytes_s": r.disk_io.write_bytes_s if r.disk_io else None,
        "processes.count": float(r.processes.count) if r.processes else None,
    }


# --- read API ---------------------------------------------------------------------------------


class HostStatus(StrEnum):
    up = "up"
    stale = "stale"
    down = "down"


class HostSummary(BaseModel):
    """One row of the fleet table, as ``GET /api/hosts`` returns it."""

    host: str
    status: HostStatus
    last_seen: datetime = Field(description="when the server last received a report (UTC)")
    seen_ago_s: float
    collected_at: datetime
    interval_s: float
    os: str = ""
    cpu_count: int | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    swap_percent: float | None = None
    disk_percent: float | None = None
    disk_mount: str | None = None
    load_1m: float | None = None
    net_rx_bytes_s: float | None = None
    net_tx_bytes_s: float | None = None
    uptime_s: float | None = None
    alerts_active: int = 0
    cpu_recent: list[float] = Field(
        default_factory=list, description="CPU % of the latest reports, oldest first"
    )


class AlertState(StrEnum):
    pending = "pending"
    firing = "firing"
    resolved = "resolved"


class AlertPublic(BaseModel):
    id: int
    rule: str
    host: str
    subject: str = ""
    state: AlertState
    severity: str = "warning"
    value: float | None = None
    threshold: float | None = None
    message: str
    started_at: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None


class HostDetail(BaseModel):
    summary: HostSummary
    report: MetricsReport
    alerts: list[AlertPublic] = Field(default_factory=list)


class HistoryPoint(BaseModel):
    t: datetime = Field(description="start of the bucket (UTC)")
    avg: float
    min: float
    max: float
    count: int


class HistorySeries(BaseModel):
    host: str
    metric: str
    since: datetime
    until: datetime
    bucket_s: float
    tier: str = "raw"
    points: list[HistoryPoint]


class ServiceHealth(BaseModel):
    """A service in the seed system's shape (camelCase keys on the wire)."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    status: HealthStatus
    last_check: datetime | None = Field(
        default=None,
        serialization_alias="lastCheck",
        validation_alias=AliasChoices("lastCheck", "last_check"),
    )
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    host: str | None = None


class HostCounts(BaseModel):
    total: int = 0
    up: int = 0
    stale: int = 0
    down: int = 0


class Thresholds(BaseModel):
    """The server's alert thresholds, so readers flag the same values the server alerts on."""

    cpu: float = 90
    memory: float = 85
    disk: float = 90


class Sentiment(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    services: list[ServiceHealth]
    hosts: HostCounts
    alerts_active: int = 0
    thresholds: Thresholds = Field(default_factory=Thresholds)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int


class ErrorBody(BaseModel):
    error: str
    detail: str


def utcnow() -> datetime:
    return datetime.now(UTC)
