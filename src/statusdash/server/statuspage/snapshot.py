"""What the page says right now, as one JSON-ready dict: the HTML is rendered from the same dict.

Built on the event loop from in-memory state only (the host cache, the service map, the open
alerts) plus the last computed bars. Nothing an agent wrote reaches it but service names the
config lists (or, without a list, the names agents report) and, with STATUS_PAGE_SHOW_HOSTS,
host ids: no addresses, no metric values, no alert messages or error texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from statusdash.safetext import one_line
from statusdash.schema import AlertState, HostStatus, ServiceHealth
from statusdash.server.alerts.engine import Alert
from statusdash.server.alerts.rules import RULE_NAMES, RuleSet
from statusdash.server.cache import LatestCache, host_status
from statusdash.server.statuspage.bars import Bar, Bars, empty_bar
from statusdash.server.statuspage.config import PageConfig
from statusdash.wire import HealthStatus

RANK = {"unknown": 0, "up": 1, "degraded": 2, "down": 3}
HEADLINES = {
    "up": "All systems operational",
    "degraded": "Partial outage",
    "down": "Major outage",
    "unknown": "Status unknown",
}
INCIDENT_TITLES = {
    "cpu": "High CPU load",
    "memory": "High memory use",
    "disk": "Disk space running low",
    "offline": "A host is not reporting",
}


def _iso(t: datetime | float | None) -> str | None:
    if t is None:
        return None
    dt = t if isinstance(t, datetime) else datetime.fromtimestamp(t, UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def combine(states: Iterable[str]) -> str:
    """Up if every part is up, down if every known part is down, degraded in between."""
    known = [s for s in states if s != "unknown"]
    if not known:
        return "unknown"
    if all(s == "up" for s in known):
        return "up"
    if all(s == "down" for s in known):
        return "down"
    return "degraded"


def _bar_json(bar: Bar) -> dict[str, Any]:
    pct = bar.percent
    return {
        "percent": None if pct is None else round(pct, 2),
        "days": [
            {
                "date": d.date,
                "percent": None if d.percent is None else round(d.percent, 2),
                "state": d.state,
            }
            for d in bar.days
        ],
    }


def _service_state(records: list[ServiceHealth]) -> str:
    states = []
    for r in records:
        if r.status == HealthStatus.healthy:
            states.append("up")
        elif r.status == HealthStatus.unhealthy:
            states.append("down")
        else:
            states.append("unknown")
    return combine(states)


_HOST = {HostStatus.up: "up", HostStatus.stale: "degraded", HostStatus.down: "down"}


def _incidents(
    alerts: Iterable[Alert], rules: RuleSet, config: PageConfig, show_hosts: bool
) -> list[dict[str, Any]]:
    out = []
    for a in alerts:
        if a.state != AlertState.firing or a.rule not in RULE_NAMES:
            continue
        if not rules.spec(a.rule, a.host, a.subject).public:
            continue
        service = config.label(a.subject) if a.rule == "service" else None
        if a.rule == "service":
            title = f"{one_line(service)} is failing" if service else "A service check is failing"
        else:
            title = INCIDENT_TITLES[a.rule]
        out.append(
            {
                "title": title,
                "severity": a.severity,
                "since": _iso(a.fired_at or a.started_at),
                "service": None if service is None else one_line(service),
                "groups": config.groups_of(a.host),
                "host": a.host if show_hosts else None,
            }
        )
    out.sort(key=lambda i: (i["since"] or "", i["title"]), reverse=True)
    return out


def build(
    *,
    config: PageConfig,
    show_hosts: bool,
    now: datetime,
    cache: LatestCache,
    services: list[ServiceHealth],
    alerts: Iterable[Alert],
    rules: RuleSet,
    bars: Bars | None,
    refresh_s: int,
) -> dict[str, Any]:
    """The page's content as a JSON-ready dict (``/status.json`` is exactly this)."""
    epoch = now.timestamp()
    by_name: dict[str, list[ServiceHealth]] = {}
    for s in services:
        by_name.setdefault(s.name, []).append(s)
    names = sorted(by_name) if config.services is None else [s.name for s in config.services]
    svc_out = []
    for name in names:
        bar = bars.services.get(name) if bars else None
        svc_out.append(
            {
                "name": one_line(config.label(name) or name),
                "status": _service_state(by_name.get(name, [])),
                "availability": _bar_json(bar or empty_bar(epoch)),
            }
        )
    hosts = [(h.name, _HOST[host_status(h.last_seen, h.interval_s, now)]) for h in cache.all()]
    grp_out = []
    for g in config.groups:
        members = [(n, st) for n, st in hosts if g.matches(n)]
        bar = bars.groups.get(g.name) if bars else None
        entry: dict[str, Any] = {
            "name": g.name,
            "status": combine(st for _, st in members),
            "availability": _bar_json(bar or empty_bar(epoch)),
        }
        if show_hosts:
            entry["hosts"] = [{"name": n, "status": st} for n, st in members]
        grp_out.append(entry)
    incidents = _incidents(alerts, rules, config, show_hosts)
    parts = [s["status"] for s in svc_out] + [g["status"] for g in grp_out]
    status = max(parts, key=RANK.__getitem__, default="unknown")
    if status != "unknown" and status != "down" and incidents:
        status = "degraded"
    if status == "unknown" and incidents:
        status = "degraded"
    return {
        "title": config.title,
        "status": status,
        "headline": HEADLINES[status],
        "generated_at": _iso(now),
        "availability_computed_at": _iso(bars.computed_at) if bars else None,
        "refresh_s": refresh_s,
        "services": svc_out,
        "groups": grp_out,
        "incidents": incidents,
    }
