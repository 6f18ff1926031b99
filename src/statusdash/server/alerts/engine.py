"""The alert state machine: pure, in memory, driven by observations at a given time.

Each (rule, host, subject) has at most one open alert. A value at or above the threshold opens
it as pending; it fires once the value has stayed at or above the clear threshold for the rule's
duration; it resolves (or, still pending, is cancelled) when the value falls below the clear
threshold. Callers persist and publish the transitions it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from statusdash.schema import AlertPublic, AlertState
from statusdash.server.alerts.rules import EVENT_RULE, RuleSet, RuleSpec

Key = tuple[str, str, str]  # rule, host, subject


@dataclass
class Alert:
    """One alert as the engine and the store know it; ``id`` is set once it is stored."""

    rule: str
    host: str
    subject: str
    state: AlertState
    severity: str
    message: str
    started_at: datetime
    value: float | None = None
    threshold: float | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    acked_at: datetime | None = None
    acked_by: str | None = None
    notified_firing: bool = False
    notified_resolved: bool = False
    cancelled: bool = False
    id: int | None = None
    resolved_by: str | None = None  # a reader who resolved it by hand (or removed its host)
    resolved_reason: str | None = None

    @property
    def key(self) -> Key:
        return (self.rule, self.host, self.subject)

    def public(self) -> AlertPublic:
        assert self.id is not None
        return AlertPublic(
            id=self.id,
            rule=self.rule,
            host=self.host,
            subject=self.subject,
            state=self.state,
            severity=self.severity,
            value=self.value,
            threshold=self.threshold,
            message=self.message,
            started_at=self.started_at,
            fired_at=self.fired_at,
            resolved_at=self.resolved_at,
            acked_at=self.acked_at,
            acked_by=self.acked_by,
            resolved_by=self.resolved_by,
            resolved_reason=self.resolved_reason,
        )


class Change(StrEnum):
    pending = "pending"
    fired = "fired"
    resolved = "resolved"
    cancelled = "cancelled"


@dataclass(frozen=True)
class Transition:
    """What happened to ``alert``; ``snapshot`` is its state at that moment."""

    change: Change
    alert: Alert
    snapshot: Alert


def _t(change: Change, alert: Alert) -> Transition:
    return Transition(change, alert, replace(alert))


def _pct(v: float) -> str:
    return f"{v:.0f}%" if v >= 1 or v == 0 else f"{v:.2f}%"


def message_for(
    rule: str, host: str, subject: str, value: float, spec: RuleSpec, detail: str = ""
) -> str:
    """A one-line message naming the host and the subject."""
    band = f"(alert at {spec.threshold:g}%, clears below {spec.clear:g}%)"
    if rule == "cpu":
        return f"{host}: CPU at {_pct(value)} {band}"
    if rule == "memory":
        return f"{host}: memory at {_pct(value)} {band}"
    if rule == "disk":
        return f"{host}: disk {subject} at {_pct(value)} full {band}"
    if rule == "offline":
        return f"{host}: offline, no report for {detail or f'{value:.1f} intervals'}"
    if rule == "service":
        return f"{host}: service {subject} unhealthy" + (f": {detail}" if detail else "")
    return detail or f"{host}: {subject or rule}"


class Engine:
    """Open alerts by key, and the rules that move them."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        # Do a host's effective tags hold these? Set by ``server.tags.connect_alerting``.
        self.matches: Callable[[str, Mapping[str, str]], bool] | None = None
        self.open: dict[Key, Alert] = {}
        self._by_host: dict[str, set[Key]] = {}

    def _add(self, alert: Alert) -> None:
        self.open[alert.key] = alert
        self._by_host.setdefault(alert.host, set()).add(alert.key)

    def _remove(self, alert: Alert) -> None:
        del self.open[alert.key]
        keys = self._by_host.get(alert.host)
        if keys is not None:
            keys.discard(alert.key)
            if not keys:
                del self._by_host[alert.host]

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Take back the open alerts of a previous run (the store's pending and firing rows)."""
        for a in alerts:
            self._add(a)

    def observe(
        self,
        rule: str,
        host: str,
        subject: str,
        value: float | None,
        now: datetime,
        detail: str = "",
    ) -> Transition | None:
        """Feed one value; ``None`` means no data, which changes nothing."""
        spec = self.rules.spec(rule, host, subject)
        key = (rule, host, subject)
        alert = self.open.get(key)
        if not spec.enabled or (spec.tags and not self._targets(host, spec.tags)):
            return self._clear(alert, now, None) if alert is not None else None
        if value is None:
            return None
        clear = min(spec.clear, spec.threshold)
        if alert is None:
            if value < spec.threshold:
                return None
            msg = message_for(rule, host, subject, value, spec, detail)
            alert = Alert(rule, host, subject, AlertState.pending, spec.severity, msg, now)
            alert.value, alert.threshold = value, spec.threshold
            self._add(alert)
            if spec.for_s <= 0:
                return self._fire(alert, now)
            return _t(Change.pending, alert)
        if value < clear:
            return self._clear(alert, now, value)
        alert.value = value
        if alert.state == AlertState.pending and (now - alert.started_at).total_seconds() >= (
            spec.for_s
        ):
            alert.message = message_for(rule, host, subject, value, spec, detail)
            return self._fire(alert, now)
        return None

    def _targets(self, host: str, tags: tuple[tuple[str, str], ...]) -> bool:
        """A rule with ``tags`` judges only the hosts whose effective tags match."""
        return self.matches is not None and self.matches(host, dict(tags))

    def trigger(
        self, rule: str, host: str, subject: str, message: str, severity: str, now: datetime
    ) -> Transition | None:
        """Fire at once (an alert reported by an event); nothing if it is already open."""
        key = (rule, host, subject)
        if key in self.open:
            return None
        alert = Alert(rule, host, subject, AlertState.pending, severity, message, now)
        self._add(alert)
        return self._fire(alert, now)

    def resolve(self, rule: str, host: str, subject: str, now: datetime) -> Transition | None:
        """Close an open alert whatever its value (an event said so, or its rule went away)."""
        alert = self.open.get((rule, host, subject))
        return None if alert is None else self._clear(alert, now, None)

    def _fire(self, alert: Alert, now: datetime) -> Transition:
        alert.state = AlertState.firing
        alert.fired_at = now
        return _t(Change.fired, alert)

    def _clear(self, alert: Alert, now: datetime, value: float | None) -> Transition:
        self._remove(alert)
        if value is not None:
            alert.value = value
        if alert.state == AlertState.pending:
            alert.cancelled = True
            return _t(Change.cancelled, alert)
        alert.state = AlertState.resolved
        alert.resolved_at = now
        return _t(Change.resolved, alert)

    # --- questions -------------------------------------------------------------------------------
    def firing(self) -> list[Alert]:
        return [a for a in self.open.values() if a.state == AlertState.firing]

    def firing_count(self, host: str | None = None) -> int:
        alerts = self.open.values() if host is None else self.open_for_host(host)
        return sum(1 for a in alerts if a.state == AlertState.firing)

    def open_for_host(self, host: str) -> list[Alert]:
        return [self.open[k] for k in sorted(self._by_host.get(host, ()))]


__all__ = ["EVENT_RULE", "Alert", "Change", "Engine", "Key", "Transition", "message_for"]
