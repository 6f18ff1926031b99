"""Service health from domain events, as the seed system's event processor kept it.

``POST /api/events`` takes SYSTEM_SERVICE_HEALTHY / SYSTEM_SERVICE_UNHEALTHY (``serviceName``,
``checkedAt``, ``metrics`` or ``errorMessage``) and SYSTEM_ALERT_TRIGGERED / SYSTEM_ALERT_RESOLVED.
The health map lives in memory, is written through to SQLite and rebuilt from it at start; a
service not heard from within its expected period shows as unknown, and so does one whose
UNHEALTHY event says ``metrics.status: "unknown"`` (the agent's check could not run). Services
a host's agent stopped listing in its reports are dropped (``health_lifecycle``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from statusdash import hostid, wire
from statusdash.errors import Invalid
from statusdash.schema import ServiceHealth
from statusdash.server.alerts.rules import EVENT_RULE
from statusdash.server.alerts.service import AlertService
from statusdash.server.alerts.store import AlertStore, ServiceRecord
from statusdash.server.domain_errors import (
    HostMismatch,
    InvalidFields,
    LimitExceeded,
    MalformedBody,
)
from statusdash.server.errors import validation_detail
from statusdash.server.health_lifecycle import CheckList
from statusdash.server.stream import SERVICE_CHANGED, Broadcaster
from statusdash.wire import MAX_EVENTS, HealthStatus

log = logging.getLogger(__name__)
YIELD_EVERY = 32
# An event is four levels deep (list, event, payload, metrics); ``metrics`` values may nest a
# little. Deeper JSON is refused before validation, so nothing downstream recurses on it.
MAX_DEPTH = 16
LOG_REFUSALS_EVERY = 100  # a refused host is logged at its first refusal, then every 100th
EventType = Literal[
    "SYSTEM_SERVICE_HEALTHY",
    "SYSTEM_SERVICE_UNHEALTHY",
    "SYSTEM_ALERT_TRIGGERED",
    "SYSTEM_ALERT_RESOLVED",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, allow_inf_nan=False)


class EventEnvelope(_In):
    type: EventType = Field(validation_alias=AliasChoices("type", "eventType", "event"))
    payload: dict[str, Any] | None = None


class ServicePayload(_In):
    service_name: str = Field(
        min_length=1,
        max_length=wire.NAME_LEN,
        validation_alias=AliasChoices("serviceName", "service_name", "name"),
    )
    checked_at: datetime | None = Field(
        default=None, validation_alias=AliasChoices("checkedAt", "checked_at")
    )
    metrics: dict[str, Any] = Field(default_factory=dict, max_length=100)
    error_message: str | None = Field(
        default=None,
        max_length=wire.DETAIL_LEN,
        validation_alias=AliasChoices("errorMessage", "error_message", "error"),
    )
    expected_within_s: float | None = Field(
        default=None,
        gt=0,
        le=7 * 86400,
        validation_alias=AliasChoices("expectedWithinS", "expected_within_s"),
    )
    host: str | None = Field(default=None, pattern=hostid.PATTERN, max_length=63)

    @field_validator("checked_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


class AlertPayload(_In):
    alert_name: str = Field(
        min_length=1,
        max_length=wire.NAME_LEN,
        validation_alias=AliasChoices("alertName", "alert_name", "name", "subject"),
    )
    message: str = Field(default="", max_length=wire.DETAIL_LEN)
    severity: Literal["info", "warning", "critical"] = "warning"
    host: str | None = Field(default=None, pattern=hostid.PATTERN, max_length=63)


@dataclass(frozen=True)
class Event:
    type: EventType
    payload: ServicePayload | AlertPayload


def parse_events(body: bytes) -> list[Event]:
    """One event object, a list of them, or ``{"events": [...]}``; 422 names the bad field."""
    try:
        raw = json.loads(body)
    except ValueError as exc:
        raise MalformedBody(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise MalformedBody("malformed JSON: nested too deeply") from None
    if _too_deep(raw):
        raise Invalid(f"the body nests deeper than {MAX_DEPTH} levels")
    if isinstance(raw, dict) and isinstance(raw.get("events"), list):
        raw = raw["events"]
    items = raw if isinstance(raw, list) else [raw]
    if not items or len(items) > MAX_EVENTS:
        raise Invalid(f"send between 1 and {MAX_EVENTS} events")
    out: list[Event] = []
    for i, item in enumerate(items):
        where = f"events[{i}]" if isinstance(raw, list) else "event"
        if not isinstance(item, dict):
            raise Invalid(f"{where}: must be a JSON object")
        try:
            env = EventEnvelope.model_validate(item)
            fields = env.payload if env.payload is not None else item
            model = AlertPayload if env.type.startswith("SYSTEM_ALERT") else ServicePayload
            out.append(Event(env.type, model.model_validate(fields)))
        except ValidationError as exc:
            text, fields_ = validation_detail(exc.errors(include_url=False))
            raise InvalidFields(f"{where}: {text}", fields_) from None
    return out


def _too_deep(raw: Any) -> bool:
    """Whether ``raw`` nests lists and objects deeper than ``MAX_DEPTH`` (without recursing)."""
    level: list[Any] = [raw] if isinstance(raw, dict | list) else []
    for _ in range(MAX_DEPTH):
        level = [
            v
            for node in level
            for v in (node.values() if isinstance(node, dict) else node)
            if isinstance(v, dict | list)
        ]
        if not level:
            return False
    return True


class ServiceMap:
    """(host, service) -> latest record; what ``GET /api/services`` and the sentiment read."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._records: dict[tuple[str, str], ServiceRecord] = {}
        self._shown: dict[tuple[str, str], HealthStatus] = {}
        self._by_host: dict[str, set[str]] = {}

    def load(self, records: list[ServiceRecord]) -> None:
        now = self.clock()
        for rec in records:
            key = (rec.host, rec.name)
            self._records[key] = rec
            self._shown[key] = self.status(rec, now)
            self._by_host.setdefault(rec.host, set()).add(rec.name)

    @staticmethod
    def status(rec: ServiceRecord, now: datetime) -> HealthStatus:
        if (now - rec.received_at).total_seconds() > rec.expected_s:
            return HealthStatus.unknown
        return HealthStatus(rec.status)

    def health(self, rec: ServiceRecord, now: datetime) -> ServiceHealth:
        return ServiceHealth(
            name=rec.name,
            status=self.status(rec, now),
            last_check=rec.checked_at or rec.received_at,
            metrics=rec.metrics,
            error=rec.error,
            host=rec.host,
        )

    def all(self) -> list[ServiceHealth]:
        now = self.clock()
        return [self.health(self._records[k], now) for k in sorted(self._records)]

    def record(self, host: str, name: str) -> ServiceRecord | None:
        return self._records.get((host, name))

    def ran(self, host: str, name: str, status: str, at: datetime) -> None:
        """A report says the check ran at ``at`` with ``status``: a newer ``lastCheck`` if the
        status is the one recorded (a change waits for its event; staleness stays event-driven)."""
        rec, at = self._records.get((host, name)), at.astimezone(UTC)
        if rec is not None and rec.status == status and (rec.checked_at or at) <= at:
            self._records[(host, name)] = replace(rec, checked_at=at)

    def names(self, host: str) -> set[str]:
        """The services ``host`` tracks (a copy)."""
        return set(self._by_host.get(host, ()))

    def counts(self) -> dict[str, int]:
        """Tracked services per host."""
        return {host: len(names) for host, names in self._by_host.items()}

    def put(self, rec: ServiceRecord) -> ServiceHealth | None:
        """Store ``rec``; the new health if what readers see changed, else None."""
        key = (rec.host, rec.name)
        old = self._records.get(key)
        self._records[key] = rec
        self._by_host.setdefault(rec.host, set()).add(rec.name)
        health = self.health(rec, self.clock())
        changed = self._shown.get(key) != health.status or (
            old is not None and old.error != rec.error
        )
        self._shown[key] = health.status
        return health if changed else None

    def remove(self, host: str, names: list[str] | None = None) -> list[str]:
        """Forget ``names`` of ``host`` (every one of its services when None); the ones it had."""
        had = self._by_host.get(host, set())
        gone = sorted(had if names is None else had & set(names))
        for name in gone:
            self._records.pop((host, name), None)
            self._shown.pop((host, name), None)
            had.discard(name)
        if not had:
            self._by_host.pop(host, None)
        return gone

    def sweep(self, now: datetime) -> list[ServiceHealth]:
        """Services whose shown status changed with time alone (they went quiet: unknown)."""
        changed = []
        for key, rec in self._records.items():
            status = self.status(rec, now)
            if self._shown.get(key) != status:
                self._shown[key] = status
                changed.append(self.health(rec, now))
        return changed


class HealthEvents:
    """Applies events: the health map, its table, the stream and the alerts."""

    def __init__(
        self,
        services: ServiceMap,
        alerts: AlertService,
        store: AlertStore,
        hub: Broadcaster,
        default_expect_s: float,
    ) -> None:
        self.services = services
        self.alerts = alerts
        self.store = store
        self.hub = hub
        self.default_expect_s = default_expect_s
        self.refused: dict[str, Counter[str]] = {}  # host -> limit name -> refused requests
        self._locks: dict[str, asyncio.Lock] = {}  # per host: the cap check and apply are one step
        self.checks = CheckList(self)

    async def start(self) -> None:
        self.services.load(await self.store.call(self.store.load_services))
        self.checks.start()

    def sweep(self, now: datetime) -> None:
        for health in self.services.sweep(now):
            self.hub.publish(SERVICE_CHANGED, health.model_dump(mode="json", by_alias=True))

    async def handle(self, host: str, events: list[Event]) -> dict[str, int]:
        """Apply ``events`` from the agent ``host``; events about another host are refused."""
        for ev in events:
            if ev.payload.host is not None and ev.payload.host != host:
                raise HostMismatch(
                    f"event for host {ev.payload.host!r} refused: this caller is {host!r}"
                )
        async with self._locks.setdefault(host, asyncio.Lock()):
            self._check_limits(host, events)
            return await self._handle(host, events)

    async def _handle(self, host: str, events: list[Event]) -> dict[str, int]:
        now = self.alerts.clock()
        records = [
            self._record(host, ev.type == "SYSTEM_SERVICE_HEALTHY", ev.payload, now)
            for ev in events
            if isinstance(ev.payload, ServicePayload)
        ]
        if records:  # stored before anything is shown or alerted on
            await self.store.call(self.store.save_services, records)
        changed = 0
        pending = iter(records)
        for i, ev in enumerate(events):
            if i % YIELD_EVERY == YIELD_EVERY - 1:  # let stream readers drain their queues
                await asyncio.sleep(0)
            p = ev.payload
            if isinstance(p, ServicePayload):
                changed += self._apply(next(pending))
            elif ev.type == "SYSTEM_ALERT_TRIGGERED":
                message = p.message or f"{host}: {p.alert_name}"
                self.alerts.trigger(EVENT_RULE, host, p.alert_name, message, p.severity)
            else:
                self.alerts.resolve(EVENT_RULE, host, p.alert_name)
        return {"accepted": len(events), "changed": changed}

    def _check_limits(self, host: str, events: list[Event]) -> None:
        """Refuse the whole request, before any of it applies, if it would pass a per-host cap."""
        cfg = self.alerts.config
        services = self.services.names(host)
        alerts = {a.subject for a in self.alerts.engine.open_for_host(host) if a.rule == EVENT_RULE}
        for ev in events:
            p = ev.payload
            if isinstance(p, ServicePayload):
                if p.service_name not in services and len(services) >= cfg.max_services_per_host:
                    what = f"new service {p.service_name!r}"
                    self._refuse(host, "MAX_SERVICES_PER_HOST", cfg.max_services_per_host, what)
                services.add(p.service_name)
            elif ev.type == "SYSTEM_ALERT_RESOLVED":
                alerts.discard(p.alert_name)
            elif p.alert_name not in alerts:
                if len(alerts) >= cfg.max_event_alerts_per_host:
                    limit, cap = "MAX_EVENT_ALERTS_PER_HOST", cfg.max_event_alerts_per_host
                    self._refuse(host, limit, cap, f"new alert {p.alert_name!r}")
                alerts.add(p.alert_name)

    def _refuse(self, host: str, limit: str, cap: int, what: str) -> None:
        counts = self.refused.setdefault(host, Counter())
        counts[limit] += 1
        n = counts[limit]
        if n % LOG_REFUSALS_EVERY == 1:
            log.warning("%s: %s refused (%s = %d), %d so far", host, what, limit, cap, n)
        raise LimitExceeded(
            f"{what} refused: {host} is at {limit} ({cap}); resolve or retire some first",
            limit,
            cap,
        )

    def limits(self) -> dict[str, Any]:
        """The caps, and per host what it uses and how often it was refused."""
        cfg = self.alerts.config
        alerts = Counter(a.host for a in self.alerts.engine.open.values() if a.rule == EVENT_RULE)
        services = self.services.counts()
        hosts = sorted(set(alerts) | set(services) | set(self.refused))
        return {
            "max_services_per_host": cfg.max_services_per_host,
            "max_event_alerts_per_host": cfg.max_event_alerts_per_host,
            "hosts": {
                h: {
                    "services": services.get(h, 0),
                    "event_alerts": alerts.get(h, 0),
                    "refused": dict(self.refused.get(h, {})),
                }
                for h in hosts
            },
        }

    def _record(self, host: str, healthy: bool, p: ServicePayload, now: datetime) -> ServiceRecord:
        status = HealthStatus.healthy if healthy else HealthStatus.unhealthy
        if not healthy and p.metrics.get("status") == HealthStatus.unknown.value:
            status = HealthStatus.unknown  # the check could not run: not known to be down
        return ServiceRecord(
            host=host,
            name=p.service_name,
            status=status.value,
            checked_at=p.checked_at,
            received_at=now,
            expected_s=p.expected_within_s or self.default_expect_s,
            metrics=p.metrics,
            error=None if healthy else (p.error_message or "unhealthy"),
        )

    def _apply(self, rec: ServiceRecord) -> int:
        health = self.services.put(rec)
        self.checks.heard(rec.host, rec.name)
        if health is not None:
            self.hub.publish(SERVICE_CHANGED, health.model_dump(mode="json", by_alias=True))
        # unknown is no data: an open alert stays as it is, none opens
        value = {HealthStatus.healthy.value: 0.0, HealthStatus.unhealthy.value: 1.0}.get(rec.status)
        self.alerts.observe("service", rec.host, rec.name, value, rec.error or "")
        return 0 if health is None else 1
