"""The alerting service in the running app: rules on every commit, a periodic check, and the
outbox that makes notifications survive a restart without being sent twice.

Transitions from the engine are persisted in order by one task, then published and notified.
An alert's ``notified_firing`` / ``notified_resolved`` flags are set once its notice has been
delivered (or given up on), so after a restart exactly the unsent notices go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal

from statusdash.errors import Conflict, NotFound
from statusdash.schema import AlertPublic, AlertState
from statusdash.server.alerts.config import AlertingConfig
from statusdash.server.alerts.engine import Alert, Change, Engine, Transition
from statusdash.server.alerts.rules import RulesError, RuleSet, default_rules, load_rules
from statusdash.server.alerts.store import AlertStore, Op, Silence, alert_row
from statusdash.server.cache import HostState, summarize
from statusdash.server.notify import Notice, Notifier, severity_rank
from statusdash.server.storage import Storage
from statusdash.server.stream import ALERT_RESOLVED, ALERT_TRIGGERED, HOST_UPDATED, Broadcaster

log = logging.getLogger(__name__)
StateFilter = Literal["active", "resolved", "all"]
PRUNE_EVERY_S = 3600.0
PERSIST_BATCH = 500  # transitions persisted in one transaction at most


def _human(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s"
    return f"{s} s"


def urgent_first(owed: Iterable[tuple[int, Alert]]) -> list[tuple[int, Alert]]:
    """``owed`` critical first, then warning, then info; within each, hosts take turns."""
    lanes: dict[int, dict[str, list[tuple[int, Alert]]]] = {}
    for aid, a in owed:
        lanes.setdefault(severity_rank(a.severity), {}).setdefault(a.host, []).append((aid, a))
    out: list[tuple[int, Alert]] = []
    for rank in sorted(lanes):
        queues = list(lanes[rank].values())
        for i in range(max(len(q) for q in queues)):
            out += [q[i] for q in queues if i < len(q)]
    return out


class AlertService:
    """Owns the engine, the outbox and the silences; everything runs on the event loop."""

    def __init__(
        self,
        config: AlertingConfig,
        thresholds: tuple[float, float, float],
        storage: Storage,
        store: AlertStore,
        hub: Broadcaster,
        notifier: Notifier,
        retention_days: int,
    ) -> None:
        self.config = config
        self.clock = config.clock
        self.base_rules = default_rules(*thresholds)
        self.engine = Engine(load_rules(config.rules_file, self.base_rules))
        self.rules_error: str | None = None
        self.storage = storage
        self.store = store
        self.hub = hub
        self.notifier = notifier
        self.silences: list[Silence] = []
        self.outbox: dict[int, Alert] = {}
        self.inflight: set[int] = set()
        self.on_tick: list[Callable[[datetime], None]] = []
        self.seen: dict[str, datetime] = {}  # host -> last report, on our clock
        self._transitions: asyncio.Queue[Transition | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._processor: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._sighup = False
        self._pruned_at: datetime | None = None
        self.retention_days = retention_days
        self.started_at = self.clock()  # reset by start(): the offline grace counts from it
        self.judging = True  # False once shutdown has begun: nothing new is decided
        # A host's effective tags for its stream row; set by ``server.tags.connect_alerting``.
        self.tags_of: Callable[[str], Mapping[str, str]] | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Reopen the alerts of the last run, start the tasks, send what was left unsent."""
        await self.store.call(self.store.open)
        self.engine.restore(await self.store.call(self.store.load_open))
        for a in self.engine.firing():
            if not a.notified_firing:
                self.outbox[a.id or 0] = a
        for a in await self.store.call(self.store.load_unnotified_resolved):
            self.outbox[a.id or 0] = a
        self.silences = await self.store.call(self.store.silences, self.clock())
        self.started_at = self.clock()
        self.notifier.start()
        self._processor = asyncio.create_task(self._process(), name="alerts-processor")
        self._ticker = asyncio.create_task(self._tick_forever(), name="alerts-ticker")
        if self.config.handle_sighup:
            self._install_sighup()
        self.flush()
        log.info(
            "alerting: %d open alerts, %d webhooks, rules from %s",
            len(self.engine.open),
            len(self.notifier.targets),
            self.config.rules_file or "built-in defaults",
        )

    def stop_judging(self) -> None:
        """Shutdown has begun: judge nothing more (ingest still commits while connections
        drain, and a host whose agent is cut off then is not offline). Open alerts stay open."""
        self.judging = False
        if self._ticker is not None:
            self._ticker.cancel()

    async def stop(self) -> None:
        self.stop_judging()
        if self._sighup:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self._processor is not None:  # persist what is already decided, then stop
            self._transitions.put_nowait(None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._processor), 5.0)
            self._processor.cancel()
            await asyncio.gather(self._processor, return_exceptions=True)
        await self.notifier.close(self.config.notify_grace_s)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        self.hub.close_all()
        await self.store.aclose()

    def _install_sighup(self) -> None:
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_rules)
            self._sighup = True
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread (tests)
            log.debug("SIGHUP reload not available in this thread")

    def reload_rules(self) -> str | None:
        """Re-read the rules file; a bad file keeps the rules in force. Returns the error."""
        try:
            rules: RuleSet = load_rules(self.config.rules_file, self.base_rules)
        except RulesError as exc:
            self.rules_error = str(exc)
            log.error("%s; keeping the rules in force", exc)
            return self.rules_error
        self.engine.rules = rules
        self.rules_error = None
        log.info("alert rules reloaded from %s", self.config.rules_file or "built-in defaults")
        return None

    # --- input -----------------------------------------------------------------------------------
    def on_commit(self, states: list[HostState]) -> None:
        """Storage listener: evaluate the rules for each host that reported, publish its row."""
        now = self.clock()
        observe = self.engine.observe
        for st in states:
            r, host = st.latest, st.name
            self.seen[host] = now
            if not self.judging:
                continue
            self._submit(observe("offline", host, "", 0.0, now))
            self._submit(observe("cpu", host, "", r.cpu.percent if r.cpu else None, now))
            self._submit(observe("memory", host, "", r.memory.percent if r.memory else None, now))
            mounts = set()
            for d in r.disks:
                mounts.add(d.mount)
                self._submit(observe("disk", host, d.mount, d.percent, now))
            for a in self.engine.open_for_host(host):  # a mount that is gone: nothing to watch
                if a.rule == "disk" and a.subject not in mounts and r.disks:
                    self.resolve("disk", host, a.subject)
            self.hub.publish(HOST_UPDATED, self._summary(st, now))

    def _summary(self, st: HostState, now: datetime) -> Callable[[], dict[str, Any]]:
        def make() -> dict[str, Any]:
            count = self.engine.firing_count(st.name)
            tags = self.tags_of(st.name) if self.tags_of is not None else None
            return summarize(st, now, count, tags).model_dump(mode="json")

        return make

    def observe(
        self, rule: str, host: str, subject: str, value: float | None, detail: str = ""
    ) -> None:
        self._submit(self.engine.observe(rule, host, subject, value, self.clock(), detail))

    def trigger(self, rule: str, host: str, subject: str, message: str, severity: str) -> None:
        self._submit(self.engine.trigger(rule, host, subject, message, severity, self.clock()))

    def resolve(self, rule: str, host: str, subject: str) -> None:
        self._submit(self.engine.resolve(rule, host, subject, self.clock()))

    def check(self) -> None:
        """The periodic pass: offline hosts, tick hooks (service staleness), silences, outbox."""
        now = self.clock()
        if not self.judging:
            return
        since_start = (now - self.started_at).total_seconds()
        for st in self.storage.cache.all():
            seen = self.seen.get(st.name)
            if seen is None and since_start < max(self.config.start_grace_s, 3 * st.interval_s):
                continue  # not heard from since start: its agent may still be on its way back
            last = seen or st.last_seen  # the cache's time: silent since before the restart
            age = max(0.0, (now - last).total_seconds())
            intervals = age / st.interval_s
            self.observe("offline", st.name, "", intervals, f"{_human(age)}")
        for hook in self.on_tick:
            try:
                hook(now)
            except Exception:
                log.exception("alerting tick hook failed")
        self.silences = [s for s in self.silences if s.expires_at > now]
        self.flush()
        if self._pruned_at is None or (now - self._pruned_at).total_seconds() >= PRUNE_EVERY_S:
            self._pruned_at = now
            before = now - timedelta(days=self.retention_days)
            self._spawn(self.store.call(self.store.prune, before))

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval_s)
            try:
                self.check()
            except Exception:
                log.exception("alerting check failed")

    # --- the ordered persist-then-publish pipeline --------------------------------------------
    def _submit(self, t: Transition | None) -> None:
        if t is not None:
            self._transitions.put_nowait(t)

    async def _process(self) -> None:
        """Persist what is queued in one transaction (up to ``PERSIST_BATCH``), then publish
        and notify it: a flood from one host costs one commit, not one per alert, so the next
        host's alert is not queued behind hundreds of commits."""
        while True:
            batch = [await self._transitions.get()]
            while len(batch) < PERSIST_BATCH and not self._transitions.empty():
                batch.append(self._transitions.get_nowait())
            todo = [t for t in batch if t is not None]
            try:
                await self._apply(todo)
            except Exception:  # one bad transition: the others still go, one at a time
                for t in todo:
                    try:
                        await self._apply([t])
                    except Exception:
                        log.exception("alert transition %s of %s failed", t.change, t.alert.key)
            if None in batch:
                return

    async def _apply(self, todo: list[Transition]) -> None:
        ops: list[Op] = []
        slots: dict[int, Alert] = {}
        shown: list[Transition] = []
        for t in todo:
            a = t.alert
            slots[id(a)] = a
            if t.change == Change.cancelled:
                ops.append((id(a), a.id, None))
            elif not (t.change == Change.pending and a.cancelled and a.id is None):
                ops.append((id(a), a.id, alert_row(a)))
                if t.change != Change.pending:
                    shown.append(t)
        ids = await self.store.call(self.store.apply, ops)
        for slot, aid in ids.items():
            slots[slot].id = aid
        for t in shown:
            a = t.alert
            assert a.id is not None
            snap = t.snapshot
            snap.id = a.id
            kind = ALERT_TRIGGERED if t.change == Change.fired else ALERT_RESOLVED
            self.hub.publish(kind, snap.public().model_dump(mode="json"))
            self.outbox[a.id] = a
        self.flush()

    # --- notifications -------------------------------------------------------------------------
    def silenced(self, a: Alert, now: datetime) -> Silence | None:
        for s in self.silences:
            if s.expires_at <= now:
                continue
            if s.host is not None and not fnmatchcase(a.host, s.host):
                continue
            if s.rule is not None and s.rule != a.rule:
                continue
            if s.subject is not None and not fnmatchcase(a.subject, s.subject):
                continue
            return s
        return None

    def flush(self) -> None:
        """Send each notice the outbox owes, the most urgent first, hosts taking turns: firing
        unless silenced, resolved if firing was. A full queue stops it; the next one resumes."""
        now = self.clock()
        for aid, a in urgent_first(self.outbox.items()):
            if aid in self.inflight:
                continue
            if a.state == AlertState.firing and not a.notified_firing:
                if self.silenced(a, now) is None and not self._send(a, "firing"):
                    return
            elif a.state == AlertState.resolved and a.notified_firing and not a.notified_resolved:
                if not self._send(a, "resolved"):
                    return
            else:
                del self.outbox[aid]

    def _send(self, a: Alert, event: Literal["firing", "resolved"]) -> bool:
        assert a.id is not None
        aid = a.id
        self.inflight.add(aid)

        def done() -> None:
            self.inflight.discard(aid)
            column = "notified_firing" if event == "firing" else "notified_resolved"
            setattr(a, column, True)
            self._spawn(self.store.call(self.store.mark_notified, aid, column))
            self.flush()

        if not self.notifier.submit(Notice.for_alert(event, a.public()), done):
            self.inflight.discard(aid)  # queue full: a delivery or the next check tries again
            return False
        return True

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- reader actions ------------------------------------------------------------------------
    async def listing(self, state: StateFilter = "active", limit: int = 200) -> list[AlertPublic]:
        active = sorted(
            (a for a in self.engine.open.values() if a.id is not None),
            key=lambda a: (a.state != AlertState.firing, -a.started_at.timestamp(), a.id or 0),
        )
        out = [a.public() for a in active] if state in ("active", "all") else []
        if state in ("resolved", "all"):
            out += [a.public() for a in await self.store.call(self.store.resolved, limit)]
        return out[:limit] if state != "active" else out

    def for_host(self, host: str) -> list[AlertPublic]:
        return [a.public() for a in self.engine.open_for_host(host) if a.id is not None]

    async def ack(self, alert_id: int, by: str) -> AlertPublic:
        for a in self.engine.open.values():
            if a.id == alert_id:
                if a.acked_at is None:
                    a.acked_at, a.acked_by = self.clock(), by
                    await self.store.call(self.store.save, a.id, alert_row(a))
                return a.public()
        stored = await self.store.call(self.store.get, alert_id)
        if stored is None:
            raise NotFound(f"no alert with id {alert_id}")
        raise Conflict(f"alert {alert_id} is already resolved; nothing to acknowledge")

    async def silence(
        self,
        host: str | None,
        rule: str | None,
        subject: str | None,
        for_s: float,
        by: str,
        comment: str = "",
    ) -> Silence:
        now = self.clock()
        s = await self.store.call(
            self.store.add_silence,
            host,
            rule,
            subject,
            now,
            now + timedelta(seconds=for_s),
            by,
            comment,
        )
        self.silences.append(s)
        return s

    def active_silences(self) -> list[Silence]:
        now = self.clock()
        return [s for s in self.silences if s.expires_at > now]

    def firing_count(self) -> int:
        return self.engine.firing_count()
