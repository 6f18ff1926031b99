"""The read API's models: what the server answers and the CLI and TUI read (pydantic).

The metrics report itself is defined once, in ``statusdash.wire`` (msgspec); here it appears only
as ``HostDetail.report``, which pydantic carries as that struct (docs/wire-schema.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from statusdash import wire
from statusdash.wire import HealthStatus


def _to_report(value: Any) -> wire.MetricsReport:
    return value if isinstance(value, wire.MetricsReport) else wire.convert(value)


# A wire report inside a pydantic model: checked by msgspec, written as the wire's JSON.
WireReport = Annotated[
    wire.MetricsReport,
    PlainValidator(_to_report),
    PlainSerializer(wire.to_builtins, return_type=dict[str, Any]),
    WithJsonSchema({"type": "object", "description": "a metrics report (docs/wire-schema.md)"}),
]


class IngestAck(BaseModel):
    accepted: int
    duplicates: int


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
    tags: dict[str, str] = Field(
        default_factory=dict, description="effective host tags: the agent's, server tags on top"
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
    resolved_by: str | None = Field(
        default=None, description="the reader who resolved it by hand or removed its host"
    )
    resolved_reason: str | None = Field(
        default=None, description="why it was resolved, when it was not its condition clearing"
    )
    maintenance: str | None = Field(
        default=None, description="the maintenance window or quiet hours holding its notices back"
    )


class TagPublic(BaseModel):
    """One effective tag of a host: its value and who set it (agent, operator or token)."""

    value: str
    source: str
    agent_value: str | None = Field(None, description="the agent's value a server tag replaces")


class HostDetail(BaseModel):
    summary: HostSummary
    report: WireReport
    alerts: list[AlertPublic] = Field(default_factory=list)
    ingest_refused: int = Field(
        0, description="reports refused by the per-host ingest limit since the server started"
    )
    tags: dict[str, TagPublic] = Field(
        default_factory=dict, description="effective host tags with where each comes from"
    )
    tags_blocked: list[str] = Field(
        default_factory=list, description="tag keys the server removes from the agent's"
    )


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


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the alert rules in force (GET /api/alerts/rules) ------------------------------------------


class RuleInForce(BaseModel):
    """One rule as the server judges one host (and mount or service) with it."""

    enabled: bool
    threshold: float = Field(description="the value at which the alert opens (pending, firing)")
    clear: float = Field(description="the alert resolves once the value falls below this")
    for_s: float = Field(description="seconds the value must hold before the alert fires")
    severity: str
    tags: dict[str, str] = Field(
        default_factory=dict, description="judged only on hosts whose effective tags match"
    )
    notify: list[str] | None = Field(
        default=None, description="NOTIFY_URLS names its alerts go to; null: the severity's route"
    )
    source: Literal["default", "file", "override"] = Field(
        "default",
        description="default: the env thresholds; file: the rules file's rules section;"
        " override: one of the file's overrides",
    )
    overrides: list[int] = Field(
        default_factory=list, description="indexes of the overrides that changed it, in order"
    )


class HostRules(BaseModel):
    """The rules in force for one host: cpu, memory, offline; each mount; each service."""

    rules: dict[str, RuleInForce] = Field(default_factory=dict)
    disks: dict[str, RuleInForce] = Field(default_factory=dict)
    services: dict[str, RuleInForce] = Field(default_factory=dict)


class RulesInForce(BaseModel):
    """The rules file, the global rules, the overrides and what they make of each known host."""

    file: str | None = None
    reload_error: str | None = None
    rules: dict[str, RuleInForce]
    overrides: list[dict[str, Any]] = Field(default_factory=list)
    hosts: dict[str, HostRules] = Field(default_factory=dict)
    routes: dict[str, list[str]] = Field(
        default_factory=dict, description="default routes by severity (NOTIFY_ROUTES, [routes])"
    )
    quiet: list[dict[str, Any]] = Field(default_factory=list, description="[[quiet]] hours")

    def spec(self, rule: str, host: str, subject: str = "") -> RuleInForce | None:
        """The rule for ``host`` (and mount or service ``subject``); the global rule for a host
        or subject the answer did not list; None for a rule the server does not have."""
        h = self.hosts.get(host)
        if h is not None:
            table = h.disks if rule == "disk" else h.services if rule == "service" else h.rules
            found = table.get(subject if rule in ("disk", "service") else rule)
            if found is not None:
                return found
        return self.rules.get(rule)


# --- agent status (``GET /api/agents``, ``statusdash agent status``) ---------------------------
def version_tuple(text: str) -> tuple[int, ...]:
    """``0.1.10`` -> (0, 1, 10): the leading numeric parts (``1.2rc1`` -> (1, 2))."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = piece[: len(piece) - len(piece.lstrip("0123456789"))]
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:
            break
    return tuple(parts)


class AgentStatus(BaseModel):
    """One agent as the server knows it from its latest report and its client certificate."""

    host: str
    status: HostStatus
    last_seen: datetime
    version: str | None = Field(None, description="null: an agent too old to say")
    spool_backlog: int | None = Field(None, description="reports waiting in its spool")
    cert_not_after: datetime | None = Field(
        None, description="its client certificate's end (from the mTLS handshake, else its own)"
    )
    behind: bool | None = Field(None, description="older than the server; null if unknown")


class AgentsAnswer(BaseModel):
    server_version: str
    agents: list[AgentStatus]


# --- labelled series (issue 13: GET /api/hosts/{id}/series, history with a selector) -----------


class SeriesInfo(BaseModel):
    """One series a host has: its metric, label values, unit and the span it has samples in."""

    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    unit: str = ""
    first: datetime = Field(description="its first sample (UTC)")
    last: datetime = Field(description="its latest sample (UTC); a stopped series stays here")


class LabelledHistory(HistorySeries):
    """The history of the one series a selector picked: today's shape plus its labels."""

    labels: dict[str, str] = Field(default_factory=dict)


class SeriesPoints(BaseModel):
    """One series of a multi-series history answer."""

    labels: dict[str, str]
    first: datetime
    last: datetime
    points: list[HistoryPoint]


class HistorySet(BaseModel):
    """Every series a selector (or a bare labelled metric) picked, at most ``HISTORY_MAX_SERIES``
    of them (in label order); ``total`` counts all that have samples in the range."""

    host: str
    metric: str
    selector: str
    unit: str = ""
    since: datetime
    until: datetime
    bucket_s: float
    tier: str = ""
    series: list[SeriesPoints]
    total: int
    truncated: bool = False


def history_answer(raw: dict[str, Any]) -> HistorySeries | HistorySet:
    """The model of a ``GET /api/hosts/{id}/history`` answer, whichever of its shapes it is."""
    if "series" in raw:
        return HistorySet.model_validate(raw)
    if "labels" in raw:
        return LabelledHistory.model_validate(raw)
    return HistorySeries.model_validate(raw)
