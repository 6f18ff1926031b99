"""Opening, listing and ending maintenance windows (``statusdash maintenance``, the API).

A window is persisted first, then joins the service's in-memory list; ending one removes it
from both and flushes the outbox, so what it held back and is still firing goes out now.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from statusdash.errors import Conflict, NotFound
from statusdash.server.alerts.maintenance import Window, add_window, remove_window
from statusdash.server.alerts.service import AlertService


async def open_window(
    svc: AlertService,
    tag: tuple[str, str],
    start: datetime | None,
    for_s: float,
    reason: str,
    by: str,
) -> Window:
    """A window for hosts with ``tag`` from ``start`` (None: now) for ``for_s`` seconds."""
    now = svc.clock()
    live = svc.maintenance.upcoming(now)
    if len(live) >= svc.config.maintenance_max:
        raise Conflict(
            f"{len(live)} maintenance windows are open or planned (MAINTENANCE_MAX_WINDOWS);"
            " remove one first"
        )
    starts = start or now
    ends = starts + timedelta(seconds=for_s)
    if ends <= now:
        raise Conflict(f"that window would end at {ends.isoformat()}, which is already past")
    w = await svc.store.call(add_window, svc.store, tag, starts, ends, reason, by, now)
    svc.maintenance.windows.append(w)
    return w


async def end_window(svc: AlertService, window_id: int) -> Window:
    """Remove a window (planned or open); what it held back and still applies is sent."""
    found = next((w for w in svc.maintenance.windows if w.id == window_id), None)
    if found is None or not await svc.store.call(remove_window, svc.store, window_id):
        raise NotFound(f"no maintenance window with id {window_id} is open or planned")
    svc.maintenance.windows.remove(found)
    svc.flush()
    return found


def listing(svc: AlertService) -> list[Window]:
    return svc.maintenance.upcoming(svc.clock())
