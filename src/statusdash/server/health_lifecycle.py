"""Every object has an end: a host taken out of the fleet (``hosts rm``), a service check taken
out of an agent's ``services.yaml``.

A report that lists service results (``MetricsReport.services``, non-empty) is authoritative for
the services *that host's agent has listed before*: one it stops listing is dropped, its alerts
resolved, once it has been left out of the host's newest reports for its own expected period
(``expectedWithinS``) with no event about it meanwhile, so a check that has not finished since an
agent restart is not dropped by a report taken before it did. A report with no list (an older
agent, or one without checks) changes nothing, and services only ever posted through
``POST /api/events`` (never listed by the agent) are never dropped by a report (docs/alerts.md).
A listed result with the status the map holds also moves that service's ``lastCheck`` to the
time the check last ran.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

from statusdash.errors import NotFound
from statusdash.server.alerts import lifecycle
from statusdash.server.cache import HostState
from statusdash.server.stream import HOST_REMOVED, SERVICE_REMOVED

if TYPE_CHECKING:
    from statusdash.server.health_events import HealthEvents

SHOW_NAMES = 10


class CheckList:
    """Per host, the services its agent lists in reports; drops the ones it stopped listing."""

    def __init__(self, health: HealthEvents) -> None:
        self.health = health
        self.listed: dict[str, set[str]] = {}
        self.omitted: dict[tuple[str, str], datetime] = {}  # first left out, on our clock
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        """Seed from the newest stored report of each host, then follow every commit."""
        storage = self.health.alerts.storage
        for st in storage.cache.all():
            names = {s.name for s in st.latest.services}
            if names:
                self.listed[st.name] = names
        storage.listeners.append(self.on_commit)

    def heard(self, host: str, name: str) -> None:
        """An event about the service: the agent still runs it."""
        self.omitted.pop((host, name), None)

    def forget(self, host: str) -> None:
        self.listed.pop(host, None)
        for key in [k for k in self.omitted if k[0] == host]:
            del self.omitted[key]

    def on_commit(self, states: list[HostState]) -> None:
        """Storage listener: each host's newest report with a list says which checks it runs."""
        cache = self.health.alerts.storage.cache
        now = self.health.alerts.clock()
        for st in states:
            newest = cache.get(st.name)
            names = {s.name for s in st.latest.services}
            if newest is None or newest.latest is not st.latest or not names:
                continue  # an older report (catch-up), or no list: nothing to decide
            for s in st.latest.services:
                self.health.services.ran(st.name, s.name, s.status.value, s.checked_at)
            listed = self.listed.setdefault(st.name, set())
            listed |= names
            gone = []
            for name in sorted(listed - names):
                rec = self.health.services.record(st.name, name)
                if rec is None:
                    listed.discard(name)
                    continue
                since = self.omitted.setdefault((st.name, name), now)
                if (now - since).total_seconds() >= rec.expected_s:
                    gone.append(name)
            for name in names:
                self.omitted.pop((st.name, name), None)
            if gone:
                self.drop(st.name, gone)

    def drop(self, host: str, names: list[str]) -> None:
        """Forget services of ``host``: memory, table, alerts, and tell the stream."""
        h = self.health
        gone = h.services.remove(host, names)
        task = asyncio.ensure_future(h.store.call(h.store.delete_services, host, gone))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        for name in gone:
            self.listed.get(host, set()).discard(name)
            self.omitted.pop((host, name), None)
            lifecycle.close(h.alerts, "service", host, name, None, lifecycle.CHECK_REMOVED)
            h.hub.publish(SERVICE_REMOVED, {"host": host, "name": name})


async def remove_host(health: HealthEvents, host: str, by: str, purge: bool) -> dict[str, Any]:
    """``hosts rm``: out of the fleet (stored first), its alerts resolved, its services gone;
    with ``purge`` its samples and tiers are deleted too. A later report brings it back."""
    storage = health.alerts.storage
    if not await storage.remove_host(host, purge):
        names = [st.name for st in storage.cache.all()]
        shown = ", ".join(names[:SHOW_NAMES]) or "none"
        more = f" and {len(names) - SHOW_NAMES} more" if len(names) > SHOW_NAMES else ""
        raise NotFound(f"no host named {host!r}; the hosts are: {shown}{more}")
    resolved = lifecycle.close_host(health.alerts, host, by)
    services = health.services.remove(host)
    await health.store.call(health.store.delete_services, host, None)
    health.checks.forget(host)
    health.refused.pop(host, None)
    for name in services:
        health.hub.publish(SERVICE_REMOVED, {"host": host, "name": name})
    health.hub.publish(HOST_REMOVED, {"host": host, "purged": purge, "by": by})
    return {"host": host, "purged": purge, "alerts_resolved": resolved, "services": services}
