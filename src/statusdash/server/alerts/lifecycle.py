"""Alerts closed by a person or because their object went away, and silences checked and ended.

``alerts resolve ID`` (who and why are kept on the alert), ``alerts unsilence ID``, the check
that a silence names a host the fleet has, and the closing of a host's alerts (``hosts rm``) or
of a removed service check's. The alert engine stays pure: these only ask it to close an alert,
then record who closed it and why before the transition is persisted and published.
"""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase

from statusdash.errors import Conflict, Invalid, NotFound
from statusdash.schema import AlertPublic, AlertState
from statusdash.server.alerts.engine import Change, Transition
from statusdash.server.alerts.service import AlertService
from statusdash.server.alerts.store import Silence, alert_row

SHOW_NAMES = 10  # hosts named in a refusal that lists the ones there are
BY_HAND = "resolved by hand"
HOST_REMOVED = "host removed from the fleet (hosts rm)"
CHECK_REMOVED = "check no longer in the agent's services.yaml"


def _closed_by(svc: AlertService, t: Transition, by: str | None, reason: str) -> Transition:
    """``t`` (the engine closing an alert whatever its value) as resolved by ``by`` for
    ``reason``; a pending alert is resolved too, not cancelled, so the record is kept."""
    a = t.alert
    if t.change == Change.cancelled:
        a.cancelled, a.state, a.resolved_at = False, AlertState.resolved, svc.clock()
    a.resolved_by, a.resolved_reason = by, reason
    return Transition(Change.resolved, a, replace(a))


def close(
    svc: AlertService, rule: str, host: str, subject: str, by: str | None, reason: str
) -> bool:
    """Resolve the open alert of (rule, host, subject) for ``reason``; False if there is none."""
    t = svc.engine.resolve(rule, host, subject, svc.clock())
    if t is not None:
        svc._submit(_closed_by(svc, t, by, reason))
    return t is not None


def close_host(svc: AlertService, host: str, by: str) -> int:
    """``hosts rm``: resolve every open alert of ``host``, forget when it last reported."""
    svc.seen.pop(host, None)
    open_ = list(svc.engine.open_for_host(host))
    return sum(close(svc, a.rule, host, a.subject, by, HOST_REMOVED) for a in open_)


async def resolve_by_hand(svc: AlertService, alert_id: int, by: str, reason: str) -> AlertPublic:
    """Resolve an open alert now, stored before the answer. A threshold whose condition still
    holds opens a new alert at its next observation (silence it to keep it quiet)."""
    a = next((a for a in svc.engine.open.values() if a.id == alert_id), None)
    if a is not None:
        t = svc.engine.resolve(a.rule, a.host, a.subject, svc.clock())
        assert t is not None
        t = _closed_by(svc, t, by, reason or BY_HAND)
        await svc.store.call(svc.store.save, a.id, alert_row(a))
        svc._submit(t)  # published, and its resolved notice owed if firing was sent
        return t.snapshot.public()
    if await svc.store.call(svc.store.get, alert_id) is None:
        raise NotFound(f"no alert with id {alert_id}")
    raise Conflict(f"alert {alert_id} is already resolved")


async def unsilence(svc: AlertService, silence_id: int) -> Silence:
    """End a silence now; the firing notices it held back go out."""
    now = svc.clock()
    found = [s for s in svc.active_silences() if s.id == silence_id]
    if not found or not await svc.store.call(svc.store.end_silence, silence_id, now):
        ids = ", ".join(str(s.id) for s in svc.active_silences()) or "none"
        raise NotFound(f"no silence {silence_id} is in force (in force: {ids})")
    svc.silences = [s for s in svc.silences if s.id != silence_id]
    svc.flush()
    return replace(found[0], expires_at=now)


def check_host(svc: AlertService, pattern: str) -> None:
    """Refuse a silence for a host id or glob that matches no host of the fleet."""
    names = [st.name for st in svc.storage.cache.all()]
    if any(fnmatchcase(n, pattern) for n in names):
        return
    shown = ", ".join(names[:SHOW_NAMES]) or "none has reported yet"
    more = f" and {len(names) - SHOW_NAMES} more" if len(names) > SHOW_NAMES else ""
    raise Invalid(f"no host matches {pattern!r}; the hosts are: {shown}{more}")
