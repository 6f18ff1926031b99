"""The agent's loop: collect on a steady cadence and spool; a push thread delivers; stop cleanly."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from statusdash import __version__
from statusdash.agent.config import CONFIG_ENV, AgentConfig
from statusdash.agent.diagnose import check_certificate
from statusdash.agent.monitor import ServiceMonitor
from statusdash.agent.push import Sender, encode
from statusdash.agent.pusher import Pusher
from statusdash.agent.renew import Renewer
from statusdash.agent.sampler import Collector
from statusdash.agent.spool import Entry, Spool, SpoolError

log = logging.getLogger("statusdash.agent")

# Between priming the counters and the first sample: long enough for meaningful CPU and
# rate figures, short enough that a new host shows up at once.
FIRST_SAMPLE_S = 1.0
ONCE_SAMPLE_S = 0.5


class StartError(Exception):
    """The agent cannot start as configured; the message says why."""


class Waker:
    """Sleeps until a timeout or a stop request; SIGTERM and SIGINT request a stop.

    A self-pipe, because a handler that only set a flag would not cut a ``time.sleep`` short
    (PEP 475 resumes it), and ``threading.Event.set`` is not safe in a signal handler.
    """

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)
        self.stopping = False
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Take SIGTERM and SIGINT (main thread only); ``uninstall`` gives them back."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self.stop()

    def stop(self) -> None:
        self.stopping = True
        self.poke()

    def poke(self) -> None:
        """Cut the current (or next) wait short; safe from any thread and signal handler."""
        with contextlib.suppress(OSError):  # a full pipe already wakes the loop
            os.write(self._w, b"\0")

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds or until poked; ``True`` if a stop was requested."""
        if not self.stopping and timeout > 0:
            ready, _, _ = select.select([self._r], [], [], timeout)
            if ready and not self.stopping:  # a poke: empty the pipe for the next wait
                with contextlib.suppress(OSError):
                    os.read(self._r, 512)
        return self.stopping

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)


class Agent:
    """Runs collection and delivery for one configuration."""

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        waker: Waker | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.cfg = cfg
        self.waker = waker or Waker()
        self._clock = clock
        self._rng = rng or random.Random()
        self.spool = Spool(
            cfg.spool_dir,
            max_bytes=cfg.spool_max_bytes,
            max_age_s=cfg.spool_max_age_s,
            keep_max_bytes=cfg.keep_acked_max_bytes,
            keep_max_age_s=cfg.keep_acked_s,
        )
        self.cycles = 0
        self.monitor: ServiceMonitor | None = None
        self.renewer: Renewer | None = None

    def _services(self) -> ServiceMonitor | None:
        if not self.cfg.services:
            return None
        from statusdash.agent.checks.config import parse_services

        return ServiceMonitor(parse_services(self.cfg.services), wake=self.waker.poke)

    def _sender(self) -> Sender:
        try:
            return Sender(self.cfg)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            cfg = self.cfg
            message = f"cannot load the TLS files ({cfg.ca}, {cfg.cert}, {cfg.key}): {exc}"
            if cfg.cert is not None:
                problems = check_certificate(cfg.ca, cfg.cert, cfg.key)
                message += "".join(f"; {p}" for p in problems)
            raise StartError(message) from exc

    def _jitter(self) -> float:
        j = min(0.05 * self.cfg.interval_s, 1.0)
        return self._rng.uniform(-j, j)

    def _about(self) -> dict[str, Any]:
        """The report's ``agent`` section: version, spool backlog, certificate's end."""
        about: dict[str, Any] = {"version": __version__, "spool_backlog": self.spool.pending}
        if self.renewer is not None:
            end = datetime.fromtimestamp(self.renewer.current.not_after, UTC)
            about["cert_not_after"] = end.isoformat()
        return about

    def _collect(self, collector: Collector) -> Entry | None:
        t0 = time.thread_time()  # this thread's: the check workers' CPU is theirs
        try:
            report = collector.collect()
            report["agent"] = self._about()
            if self.monitor is not None:
                report["services"] = self.monitor.results()
            if self.cfg.tags:
                report["tags"] = dict(self.cfg.tags)
            payload = encode(report)
        except Exception:  # a bug in a collector must not end months of monitoring
            log.exception("collection failed")
            return None
        cost = (time.thread_time() - t0) * 1000
        # named by its collected_at: what the server's high-water mark is compared with
        collected = datetime.fromisoformat(str(report["collected_at"])).timestamp()
        entry = self.spool.append(payload, collected, sync=False)
        self.cycles += 1
        log.debug("cycle %d: collected in %.1f ms CPU, %d bytes", self.cycles, cost, len(payload))
        return entry

    def run(self) -> int:
        """The daemon: returns the exit code (0 after SIGTERM/SIGINT, 1 if it cannot start)."""
        cfg = self.cfg
        try:
            self.spool.open()
        except SpoolError as exc:
            log.error("%s", exc)
            return 1
        try:
            sender = self._sender()
        except StartError as exc:
            log.error("%s", exc)
            self.spool.close()
            return 1
        self.waker.install()
        pusher: Pusher | None = None
        try:
            collector = Collector(
                cfg.host_id, cfg.interval_s, cfg.extra_mounts, top_processes=cfg.top_processes
            )
            self.monitor = self._services()
            log.info(
                "agent %s: reporting to %s every %gs; spool %s (%d waiting)%s",
                cfg.host_id,
                cfg.server_url,
                cfg.interval_s,
                cfg.spool_dir,
                self.spool.pending,
                self._services_note(),
            )
            pusher = Pusher(
                sender,
                self.spool,
                self.monitor.events if self.monitor is not None else None,
                pass_s=cfg.interval_s,
                backoff_max_s=cfg.backoff_max_s,
                flush_s=cfg.flush_timeout_s,
                rng=self._rng,
                clock=self._clock,
            )
            pusher.start()  # at once: the spool may hold reports of an earlier run
            self.renewer = Renewer.for_config(cfg)  # at 2/3 of the certificate's life
            self._loop(collector, pusher)
            self._stop(pusher)
        finally:
            self._shut_down(sender, pusher)
        return 0

    def _shut_down(self, sender: Sender, pusher: Pusher | None = None) -> None:
        """What ``run`` and ``once`` started, stopped in reverse order."""
        if self.monitor is not None:
            self.monitor.close()
        if pusher is None or pusher.stop(0):
            sender.close()  # else the push thread still holds it: the exit ends both
        self.spool.close()
        self.waker.uninstall()

    def _loop(self, collector: Collector, pusher: Pusher) -> None:
        """Collect on a steady cadence until a stop (or ``max_cycles``); never waits on a push."""
        cfg = self.cfg
        next_collect = self._clock() + min(cfg.interval_s, FIRST_SAMPLE_S)
        while True:
            now = self._clock()
            wake = next_collect
            if self.monitor is not None:
                self.monitor.start_due(now)  # in worker threads: nothing here waits on them
                wake = min(wake, self.monitor.next_due())
            if self.waker.wait(wake - now):
                return
            now = self._clock()
            if self.monitor is not None and self.monitor.update(now):
                pusher.poke()  # the results that finished raised events
            if now >= next_collect:
                if self._collect(collector) is not None:
                    pusher.poke()
                if self.renewer is not None:
                    self.renewer.tick()  # a time check; the renewal itself runs in a thread
                next_collect += cfg.interval_s + self._jitter()
                if next_collect <= now:  # suspended or starved: skip, do not burst
                    next_collect = now + cfg.interval_s
            if cfg.max_cycles is not None and self.cycles >= cfg.max_cycles:
                return

    def _services_note(self) -> str:
        if self.monitor is None:
            return ""
        n = len(self.monitor.config.services)
        return f"; {n} service check(s) from {self.cfg.services_file or 'the configuration'}"

    def _stop(self, pusher: Pusher) -> None:
        """On the way out: the push in flight ends, then one bounded delivery of what waits."""
        if self.waker.signal is not None:
            log.info("stopping on %s", signal.Signals(self.waker.signal).name)
        if self.monitor is not None:
            self.monitor.update(self._clock())
        if not pusher.stop(self.cfg.push_timeout_s + self.cfg.flush_timeout_s + 5):
            log.warning("the push in flight did not end in time; leaving it behind")
        log.info(
            "stopped after %d report(s); %d spooled for the next start in %s",
            self.cycles,
            self.spool.pending,
            self.cfg.spool_dir,
        )
        if self.monitor is not None and self.monitor.events:
            log.warning(
                "%d service event(s) not delivered: the next start sends every service's status",
                len(self.monitor.events),
            )

    def once(self) -> tuple[int, str]:
        """Collect and push one report; returns the exit code and a one-line outcome."""
        cfg = self.cfg
        try:
            self.spool.open()
        except SpoolError as exc:
            return 1, str(exc)
        try:
            sender = self._sender()
        except StartError as exc:
            self.spool.close()
            return 1, str(exc)
        self.waker.install()
        try:
            collector = Collector(
                cfg.host_id, cfg.interval_s, cfg.extra_mounts, top_processes=cfg.top_processes
            )
            self.monitor = self._services()
            sample_at = self._clock() + ONCE_SAMPLE_S
            if self.monitor is not None:
                self.monitor.start_due(self._clock())
            while self._clock() < sample_at:  # a finished check pokes the waker: sleep on
                if self.waker.wait(sample_at - self._clock()):
                    break
            if self.monitor is not None:  # every check, each bounded by its timeout
                longest = max(s.timeout for s in self.monitor.config.services)
                self.monitor.idle(longest + 2 * ONCE_SAMPLE_S)
                self.monitor.update(self._clock())
            entry = self._collect(collector)
            if entry is None:
                return 1, "collection failed (see the log above)"
            result = sender.deliver(self.spool)
            self.spool.sync()
            waiting = {e.seq for e in self.spool.entries()}
            if entry.seq in waiting:
                why = result.error or "not acknowledged"
                return 1, (
                    f"the report was not delivered ({why}); it is spooled in {cfg.spool_dir}"
                    f" with {len(waiting) - 1} other(s) and will be sent by the next run"
                )
            done = f"report delivered to {cfg.server_url} ({result.delivered} sent)"
            if self.monitor is not None and self.monitor.events:
                events = sender.send_events(self.monitor.events)
                if self.monitor.events:
                    why = events.error or "not acknowledged"
                    return 1, f"{done}, but not its service events ({why})"
                done += f" with {events.delivered} service event(s)"
            return 0, done
        finally:
            self._shut_down(sender)


def setup_logging(level: str) -> None:
    """Log to stderr; without timestamps under systemd, whose journal adds its own."""
    fmt = "%(levelname)s %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(environ: dict[str, Any] | None = None) -> int:
    """Entry of the lean daemon process (``python -m statusdash.agent``)."""
    env = os.environ if environ is None else environ
    text = env.pop(CONFIG_ENV, None)
    if not text:
        print("statusdash.agent: start the agent with `statusdash agent run`", file=sys.stderr)
        return 2
    cfg = AgentConfig.from_json(text)
    setup_logging(cfg.log_level)
    return Agent(cfg).run()
