"""Grouped notifications: one outage, one page (as Alertmanager's group_wait / group_interval).

Each alert notice joins the group of its key (``NOTIFY_GROUP_BY``, by rule and severity by
default). A group that has nothing to say waits ``wait_s`` after its first change, so the alerts
of one outage arrive together; after it has sent, further changes wait until ``interval_s``
after its last message and go out together as an update. A group whose last message is older
than ``interval_s`` treats a new change as a new batch (it waits ``wait_s`` again). A group
lives while it has firing members it has told about or changes still to send.

A message of one member is the single-alert notice, unchanged; a message of several is one
notice listing them (firing first, then resolved; within each, most severe first and hosts
taking turns, so a host with many alerts cannot push another host's out of the listed lines).
Each group is one job on the notifier's fair queue (by severity, groups taking turns), and a
member's callback runs once the group's message is delivered or given up on, so the alert
service's outbox (``notified_firing`` / ``notified_resolved``) works as before. Nothing waits
longer than ``interval_s`` plus a full queue's turn; a change still buffered at shutdown was
never marked notified, so it goes out after the next start. docs/alerts.md, "Grouping".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from statusdash.safetext import one_line
from statusdash.schema import AlertPublic
from statusdash.server.notify import SEVERITIES, Notice, severity_rank
from statusdash.settings import Settings

log = logging.getLogger(__name__)

RETRY_FULL_S = 1.0  # a group whose turn finds the queue full tries again this much later
Done = Callable[[], None] | None
Key = tuple[tuple[str, str], ...]


def parse_group_by(spec: str) -> tuple[str, ...]:
    """``"rule,severity"`` as labels (``Settings`` has refused unknown ones)."""
    return tuple(part.strip() for part in spec.split(",") if part.strip())


@dataclass(frozen=True)
class GroupPolicy:
    """How notices are grouped; built from the settings (their docstrings say what each is)."""

    wait_s: float  # 0: grouping off, every notice alone
    interval_s: float
    by: tuple[str, ...]
    max_lines: int  # alerts listed in a message's text (the JSON lists every one)
    max_alerts: int  # buffered across groups; past it only a host's first gets in

    @property
    def on(self) -> bool:
        return self.wait_s > 0

    @classmethod
    def from_settings(cls, s: Settings) -> GroupPolicy:
        return cls(
            wait_s=s.notify_group_wait_s,
            interval_s=s.notify_group_interval_s,
            by=parse_group_by(s.notify_group_by),
            max_lines=s.notify_group_max_lines,
            max_alerts=s.notify_group_max_alerts,
        )

    def key(self, alert: AlertPublic, route: tuple[str, ...] | None = None) -> Key:
        """The group of ``alert``; a routed notice groups only with notices of its route, so a
        message never reaches a target one of its members was not routed to."""
        key = tuple((label, str(getattr(alert, label))) for label in self.by)
        return key if route is None else (*key, ("route", ",".join(route) or "-"))


@dataclass
class _Group:
    key: Key
    pending: list[tuple[Notice, Done]] = field(default_factory=list)
    firing: set[int] = field(default_factory=set)  # told firing, not yet told resolved
    sent_at: float | None = None  # loop time of the last message
    timer: asyncio.TimerHandle | None = None
    sending: bool = False
    sequence: int = 0

    @property
    def name(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.key) or "all alerts"


def in_turns(members: list[Notice]) -> list[Notice]:
    """Firing before resolved; then most severe first; within that, hosts take turns."""
    lanes: dict[tuple[int, int], dict[str, list[Notice]]] = {}
    for n in members:
        lane = (int(n.event != "firing"), severity_rank(n.severity))
        lanes.setdefault(lane, {}).setdefault(n.host, []).append(n)
    out: list[Notice] = []
    for lane in sorted(lanes):
        queues = list(lanes[lane].values())
        for i in range(max(len(q) for q in queues)):
            out += [q[i] for q in queues if i < len(q)]
    return out


def group_notice(
    group: _Group, members: list[Notice], max_lines: int, sequence: int, firing_in_all: int
) -> Notice:
    """The one notice that tells ``members`` (already in the group's order)."""
    firing = [n for n in members if n.event == "firing"]
    resolved = [n for n in members if n.event == "resolved"]
    hosts = sorted({n.host for n in members})
    level = SEVERITIES[min(severity_rank(n.severity) for n in members)]
    label = level.upper() if firing else "RESOLVED"
    counts = ", ".join(
        f"{len(part)} {word}" for part, word in ((firing, "firing"), (resolved, "resolved")) if part
    )
    plural = "host" if len(hosts) == 1 else "hosts"
    head = f"{label} {group.name}: {counts} on {len(hosts)} {plural}"
    if sequence > 1:
        head += f" (update {sequence}; {firing_in_all} firing in all)"
    lines = [one_line(n.text) for n in members[:max_lines]]
    if len(members) > max_lines:
        lines.append(f"… and {len(members) - max_lines} more (every one in the JSON payload)")
    extra: dict[str, Any] = {
        "group": {
            "key": {k: v for k, v in group.key if k != "route"},
            "sequence": sequence,
            "firing": len(firing),
            "resolved": len(resolved),
            "firing_in_all": firing_in_all,
            "hosts": hosts,
        },
        "alerts": [
            {"event": n.event, "alert": n.alert.model_dump(mode="json") if n.alert else None}
            for n in members
        ],
    }
    return Notice(
        "firing" if firing else "resolved",
        "\n".join([head, *lines]),
        heading=f"statusdash: {counts}, {group.name}",
        level=level,
        key=f"group:{group.name}",
        extra=extra,
        route=members[0].route,
        see=members[0].see if len(hosts) == 1 else "statusdash alerts ls",
    )


class Grouper:
    """Buffers alert notices per group and hands each group's message to ``enqueue``."""

    def __init__(
        self,
        policy: GroupPolicy,
        enqueue: Callable[[Notice, Done], bool],
        has_room: Callable[[], bool],
    ) -> None:
        self.policy = policy
        self._enqueue = enqueue
        self._has_room = has_room
        self.groups: dict[Key, _Group] = {}
        self.buffered = 0
        self._per_host: dict[str, int] = {}
        self.messages = 0  # group messages handed to the queue

    def add(self, notice: Notice, on_done: Done) -> bool:
        """Buffer ``notice`` in its group; False (the outbox keeps it) past ``max_alerts``,
        unless its host has nothing buffered: one host's flood cannot shut out another."""
        assert notice.alert is not None
        host = notice.alert.host
        if self.buffered >= self.policy.max_alerts and self._per_host.get(host):
            return False
        key = self.policy.key(notice.alert, notice.route)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(key)
        group.pending.append((notice, on_done))
        self.buffered += 1
        self._per_host[host] = self._per_host.get(host, 0) + 1
        if group.timer is None and not group.sending:
            self._schedule(group)
        return True

    def close(self) -> None:
        """Cancel every timer; what is buffered was never marked notified (sent after a start)."""
        for group in self.groups.values():
            if group.timer is not None:
                group.timer.cancel()
                group.timer = None
        self.groups.clear()

    def _schedule(self, group: _Group, delay: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if delay is None:
            last = group.sent_at
            if last is None or now - last >= self.policy.interval_s:
                delay = self.policy.wait_s  # a new batch: gather it
            else:
                delay = max(0.0, last + self.policy.interval_s - now)  # an update
        group.timer = loop.call_later(delay, self._flush, group)

    def _flush(self, group: _Group) -> None:
        group.timer = None
        if not group.pending:
            self._drop_if_idle(group)
            return
        if not self._has_room():
            self._schedule(group, RETRY_FULL_S)
            return
        taken = group.pending
        firing = set(group.firing)
        for notice, _ in taken:
            assert notice.alert is not None
            if notice.event == "firing":
                firing.add(notice.alert.id)
            else:
                firing.discard(notice.alert.id)
        members = in_turns([n for n, _ in taken])
        callbacks = [cb for _, cb in taken if cb is not None]
        sequence = group.sequence + 1
        try:
            if len(members) == 1:
                message = members[0]
            else:
                lines = self.policy.max_lines
                message = group_notice(group, members, lines, sequence, len(firing))
        except Exception:  # a bug in building it must not strand the alerts: a plain message
            log.exception("cannot build the message of group %s", group.name)
            hosts = ", ".join(sorted({n.host for n in members}))
            text = f"{len(members)} alert changes in {group.name} on {hosts}"
            message = Notice(
                members[0].event,
                text,
                key=f"group:{group.name}",
                level="critical",
                route=members[0].route,
            )

        def done() -> None:
            group.sending = False
            for cb in callbacks:
                try:
                    cb()
                except Exception:
                    log.exception("notification callback failed")
            if group.pending and group.timer is None:
                self._schedule(group)
            else:
                self._drop_if_idle(group)

        if not self._enqueue(message, done):  # has_room said yes; should it not, try again
            self._schedule(group, RETRY_FULL_S)
            return
        group.pending, group.firing, group.sequence = [], firing, sequence
        group.sent_at = asyncio.get_running_loop().time()
        group.sending = True
        self.messages += 1
        for notice, _ in taken:
            host = notice.host
            self.buffered -= 1
            left = self._per_host[host] - 1
            if left:
                self._per_host[host] = left
            else:
                del self._per_host[host]

    def _drop_if_idle(self, group: _Group) -> None:
        idle = not (group.pending or group.firing or group.sending or group.timer)
        if idle and self.groups.get(group.key) is group:
            del self.groups[group.key]
