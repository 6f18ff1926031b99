"""The TUI's state, free of Textual: the fleet, its recent CPU per host, sort, filter, link state.

Workers fetch; message handlers feed this model; widgets read it. Nothing here does I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from statusdash.schema import (
    AlertPublic,
    HostStatus,
    HostSummary,
    RulesInForce,
    Sentiment,
    ServiceHealth,
)
from statusdash.tui import fmt, grouping
from statusdash.tui.fmt import Thresholds

SPARK_LEN = 20  # CPU values kept per host: as many as the server sends in ``cpu_recent``
OFFLINE_AFTER_S = 10.0
MAX_BACKOFF_S = 30.0
# The rules in force change only when the server re-reads its rules file (SIGHUP), which the
# stream does not announce: fetched at start, when a host or mount appears that the answer did
# not cover, and again this long after the last answer (docs/tui.md).
RULES_REFRESH_S = 60.0
RULES_MIN_GAP_S = 5.0  # a failed fetch, or a host or mount the answer missed: at most this often
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


class SortKey(StrEnum):
    status = "status"
    host = "host"
    cpu = "cpu"
    mem = "mem"
    disk = "disk"
    load = "load"
    net = "net"
    up = "up"
    seen = "seen"
    os = "os"


SORT_ORDER: tuple[SortKey, ...] = tuple(SortKey)
# Keys whose natural order is "largest first" (like top), so the first press shows the worst.
DESCENDING_FIRST = {SortKey.cpu, SortKey.mem, SortKey.disk, SortKey.load, SortKey.net}


class ConnState(StrEnum):
    connecting = "connecting"
    live = "live"
    polling = "polling"
    reconnecting = "reconnecting"
    offline = "offline"


@dataclass
class Link:
    """How the TUI is connected: last success, consecutive failures, stream or polling."""

    started: datetime
    last_ok: datetime | None = None
    failures: int = 0
    error: str = ""
    streaming: bool = False

    def ok(self, now: datetime) -> None:
        self.last_ok = now
        self.failures = 0
        self.error = ""

    def failed(self, error: str) -> None:
        self.failures += 1
        self.error = error

    def state(self, now: datetime) -> ConnState:
        if self.failures == 0:
            if self.last_ok is None:
                return ConnState.connecting
            return ConnState.live if self.streaming else ConnState.polling
        since = self.last_ok or self.started
        if (now - since).total_seconds() >= OFFLINE_AFTER_S:
            return ConnState.offline
        return ConnState.reconnecting

    def data_age(self, now: datetime) -> float | None:
        return None if self.last_ok is None else max(0.0, (now - self.last_ok).total_seconds())

    def backoff(self, base: float) -> float:
        """Delay before the next poll: ``base`` when healthy, doubling per failure up to 30 s."""
        if self.failures == 0:
            return base
        return float(min(MAX_BACKOFF_S, max(base, 1.0) * 2 ** (self.failures - 1)))


@dataclass
class HostRow:
    """A host as last received, when it was received (local clock), and its recent CPU."""

    summary: HostSummary
    received: datetime
    cpu: deque[float | None] = field(default_factory=lambda: deque(maxlen=SPARK_LEN))
    version: int = 0


def _note_cpu(ring: deque[float | None], h: HostSummary, new_report: bool) -> None:
    """Keep the sparkline's values: the server's ``cpu_recent`` when it knows at least as many
    as we do (first sight, re-sync), else our own one value per new report (an older server, or
    one just restarted whose memory is shorter than ours)."""
    if h.cpu_recent and len(h.cpu_recent) >= len(ring):
        ring.clear()
        ring.extend(h.cpu_recent[-SPARK_LEN:])
    elif new_report:
        ring.append(h.cpu_percent)


def _net(h: HostSummary) -> float:
    return (h.net_rx_bytes_s or 0.0) + (h.net_tx_bytes_s or 0.0)


_SEVERITY = {HostStatus.down: 0, HostStatus.stale: 2, HostStatus.up: 3}


def _status_rank(h: HostSummary) -> int:
    if h.status is HostStatus.down:
        return 0
    return 1 if h.alerts_active else _SEVERITY[h.status]


class FleetModel:
    """Everything the fleet, alerts and services screens show."""

    def __init__(self, thresholds: Thresholds, now: datetime) -> None:
        self.thresholds = thresholds
        self.rows: dict[str, HostRow] = {}
        self.sentiment: Sentiment | None = None
        self.alerts: list[AlertPublic] = []
        self.services: list[ServiceHealth] = []
        self.link = Link(started=now)
        self.sort_key = SortKey.host
        self.reverse = False
        self.filter_text = ""
        self._filter = grouping.Filter.parse("")
        self.group_by: str | None = None  # a tag key: hosts in a section per value
        self.version = 0
        self.problems: list[str] = []
        self.stream_note = ""
        self._view: list[str] | None = None
        self._lines: list[grouping.Line] | None = None
        self.rules: RulesInForce | None = None
        self.rules_at: datetime | None = None
        self.rules_error = ""
        self._alerting: dict[tuple[str, str], set[str]] = {}

    # --- feeding ---------------------------------------------------------------------------
    def apply_hosts(self, hosts: list[HostSummary], now: datetime) -> None:
        """Replace the fleet with a full answer of ``GET /api/hosts``."""
        seen = set()
        for h in hosts:
            seen.add(h.host)
            self._upsert(h, now)
        for gone in set(self.rows) - seen:
            del self.rows[gone]
        self._changed()

    def apply_update(self, h: HostSummary, now: datetime) -> None:
        """Merge one host from the stream."""
        self._upsert(h, now)
        self._changed()

    def _upsert(self, h: HostSummary, now: datetime) -> None:
        row = self.rows.get(h.host)
        if row is None:
            row = self.rows[h.host] = HostRow(h, now)
            _note_cpu(row.cpu, h, new_report=True)
            return
        _note_cpu(row.cpu, h, new_report=h.collected_at != row.summary.collected_at)
        if h != row.summary:
            row.version += 1
        row.summary = h
        row.received = now

    def set_sentiment(self, s: Sentiment) -> None:
        """Keep the sentiment; its thresholds (when the server sent them) replace the local ones."""
        self.sentiment = s
        if "thresholds" in s.model_fields_set:
            t = s.thresholds
            self.thresholds = replace(self.thresholds, cpu=t.cpu, memory=t.memory, disk=t.disk)
        self.version += 1

    def set_alerts(self, alerts: list[AlertPublic]) -> None:
        """Keep the active alerts: most severe first, then firing before pending, newest first."""
        self.alerts = sort_alerts(alerts)
        self._alerting = {}
        for a in alerts:
            if a.state != "resolved":
                self._alerting.setdefault((a.host, a.rule), set()).add(a.subject)
        self.version += 1

    def set_services(self, services: list[ServiceHealth]) -> None:
        self.services = sorted(services, key=lambda s: (s.status != "unhealthy", s.name))
        self.version += 1

    # --- the rules in force: every flag is judged as the server judges ----------------------
    def set_rules(self, rules: RulesInForce | None, now: datetime, error: str = "") -> None:
        """Keep the server's rules (None: the server has no rules route; keep the thresholds)."""
        if rules is not None:
            self.rules = rules
        self.rules_at, self.rules_error = now, error
        self.version += 1

    def rules_wanted(self, now: datetime) -> bool:
        """True when the rules should be fetched: never fetched, old, or a host or mount shown
        that the last answer did not cover (its overrides may differ from the global rules)."""
        if self.rules_at is None:
            return True
        age = (now - self.rules_at).total_seconds()
        if age >= RULES_REFRESH_S:
            return True
        if age < RULES_MIN_GAP_S or self.rules_error:
            return age >= RULES_MIN_GAP_S  # a failed fetch is tried again soon
        if self.rules is None:  # the server has no rules route: its sentiment thresholds hold
            return False
        known = self.rules.hosts
        for host, row in self.rows.items():
            h = known.get(host)
            if h is None or (row.summary.disk_mount and row.summary.disk_mount not in h.disks):
                return True
        return False

    def limit(self, host: str, rule: str, subject: str = "") -> float | None:
        """The threshold the server alerts ``host`` at for ``rule``; None if the rule is off."""
        if self.rules is not None:
            spec = self.rules.spec(rule, host, subject)
            if spec is not None:
                return spec.threshold if spec.enabled else None
        return {"cpu": self.thresholds.cpu, "memory": self.thresholds.memory}.get(
            rule, self.thresholds.disk
        )

    def alerting(self, host: str, rule: str, subject: str | None = None) -> bool:
        """True if ``host`` has an open (pending or firing) ``rule`` alert, on ``subject`` if
        given."""
        subjects = self._alerting.get((host, rule))
        return bool(subjects) and (subject is None or subject in (subjects or ()))

    def flag(
        self,
        host: str,
        rule: str,
        value: float | None,
        subject: str = "",
        any_subject: bool = False,
    ) -> str:
        """``crit`` (shown with ``!``) when the server alerts on it or the value is at its
        threshold, ``warn`` within the margin below, ``ok``, or ``none`` for no value."""
        if self.alerting(host, rule, None if any_subject else subject):
            return "crit"
        limit = self.limit(host, rule, subject)
        if limit is None:
            return "none" if value is None else "ok"
        return fmt.level(value, limit, self.thresholds.warn_margin)

    def _changed(self) -> None:
        self._view = self._lines = None
        self.version += 1

    # --- sorting and filtering ---------------------------------------------------------------
    def set_sort(self, key: SortKey, reverse: bool | None = None) -> None:
        """Sort by ``key``; choosing the current key again flips the order."""
        if reverse is None:
            reverse = (not self.reverse) if key == self.sort_key else key in DESCENDING_FIRST
        self.sort_key, self.reverse = key, reverse
        self._changed()

    def cycle_sort(self) -> SortKey:
        i = SORT_ORDER.index(self.sort_key)
        self.set_sort(SORT_ORDER[(i + 1) % len(SORT_ORDER)], reverse=None)
        if self.sort_key not in DESCENDING_FIRST:
            self.reverse = False
        return self.sort_key

    def set_filter(self, text: str) -> None:
        """Words in host, OS, status or tags; a ``key=value`` word matches that tag exactly."""
        self.filter_text = text.strip()
        self._filter = grouping.Filter.parse(self.filter_text)
        self._changed()

    def tag_keys(self) -> list[str]:
        return grouping.tag_keys(r.summary for r in self.rows.values())

    def cycle_group(self) -> str | None:
        """Group by the next tag key present (none after the last one)."""
        self.group_by = grouping.next_group(self.group_by, self.tag_keys())
        self._changed()
        return self.group_by

    def view(self) -> list[str]:
        """Host ids to show, filtered and sorted (cached until the data or the order changes)."""
        if self._view is None:
            rows = [r for r in self.rows.values() if self._filter.matches(r.summary)]
            key = self._sort_value
            rows.sort(key=lambda r: r.summary.host)
            rows.sort(key=key, reverse=self.reverse)
            hosts = [r.summary for r in rows]
            if self.group_by is not None:
                hosts = grouping.group_order(hosts, self.group_by)
            self._view = [h.host for h in hosts]
            self._lines = grouping.lines(hosts, self.group_by)
        return self._view

    def lines(self) -> list[grouping.Line]:
        """The table's rows: ``view()`` with a section row before each group when grouping."""
        self.view()
        assert self._lines is not None
        return self._lines

    def _sort_value(self, r: HostRow) -> tuple[int, float | str]:
        h = r.summary
        k = self.sort_key
        if k is SortKey.host:
            return (0, h.host)
        if k is SortKey.os:
            return (0, h.os.lower())
        if k is SortKey.status:
            return (0, float(_status_rank(h)))
        value: float | None = {
            SortKey.cpu: h.cpu_percent,
            SortKey.mem: h.memory_percent,
            SortKey.disk: h.disk_percent,
            SortKey.load: h.load_1m,
            SortKey.net: _net(h),
            SortKey.up: h.uptime_s,
            SortKey.seen: h.seen_ago_s,
        }[k]
        # Unknown values sort last whichever the direction.
        if value is None:
            return (0, 0.0) if self.reverse else (1, 0.0)
        return (1, value) if self.reverse else (0, value)

    # --- reading -----------------------------------------------------------------------------
    def seen_ago(self, row: HostRow, now: datetime) -> float:
        """Seconds since the server last heard from the host, aged locally since we received it."""
        return row.summary.seen_ago_s + max(0.0, (now - row.received).total_seconds())

    def data_stale(self, now: datetime) -> bool:
        """True when what we show is older than the server would tell us now."""
        return self.link.state(now) in (ConnState.reconnecting, ConnState.offline)

    def counts(self) -> dict[str, int]:
        c = {"up": 0, "stale": 0, "down": 0}
        for r in self.rows.values():
            c[r.summary.status.value] += 1
        return c

    def alerts_active(self) -> int:
        if self.sentiment is not None and not self.alerts:
            return self.sentiment.alerts_active
        return sum(1 for a in self.alerts if a.state != "resolved")

    def disk_judge(self, host: str) -> Callable[[str, float], str]:
        """``flag`` for ``host``'s mounts: ``judge(mount, percent)`` (the host screen's disks)."""
        return lambda mount, percent: self.flag(host, "disk", percent, mount)


def sort_alerts(alerts: list[AlertPublic]) -> list[AlertPublic]:
    """Open before resolved, most severe first, firing before pending, then newest first."""
    by_age = sorted(alerts, key=lambda a: (a.started_at, a.id), reverse=True)
    return sorted(
        by_age,
        key=lambda a: (
            a.state == "resolved",
            SEVERITY_RANK.get(a.severity, len(SEVERITY_RANK)),
            a.state != "firing",
        ),
    )
