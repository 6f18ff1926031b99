"""The agent's loop: collect on a steady cadence, spool, deliver with backoff, stop cleanly."""

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
from types import FrameType
from typing import Any

from statusdash.agent.config import CONFIG_ENV, AgentConfig
from statusdash.agent.diagnose import check_certificate
from statusdash.agent.push import Backoff, Sender, encode
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
        with contextlib.suppress(OSError):  # a full pipe already wakes the loop
            os.write(self._w, b"\0")

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; ``True`` if a stop was requested."""
        if not self.stopping and timeout > 0:
            select.select([self._r], [], [], timeout)
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
            cfg.spool_dir, max_bytes=cfg.spool_max_bytes, max_age_s=cfg.spool_max_age_s
        )
        self.cycles = 0

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

    def _collect(self, collector: Collector) -> Entry | None:
        t0 = time.process_time()
        try:
            report = collector.collect()
            payload = encode(report)
        except Exception:  # a bug in a collector must not end months of monitoring
            log.exception("collection failed")
            return None
        cost = (time.process_time() - t0) * 1000
        entry = self.spool.append(payload, time.time(), sync=False)
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
        backoff = Backoff(1.0, cfg.backoff_max_s, self._rng)
        try:
            collector = Collector(cfg.host_id, cfg.interval_s, cfg.extra_mounts)
            log.info(
                "agent %s: reporting to %s every %gs; spool %s (%d waiting)",
                cfg.host_id,
                cfg.server_url,
                cfg.interval_s,
                cfg.spool_dir,
                self.spool.pending,
            )
            now = self._clock()
            next_collect = now + min(cfg.interval_s, FIRST_SAMPLE_S)
            next_delivery = now
            while True:
                now = self._clock()
                wake = next_collect
                if self.spool.pending:
                    wake = min(wake, next_delivery)
                if self.waker.wait(wake - now):
                    break
                now = self._clock()
                if now >= next_collect:
                    self._collect(collector)
                    next_collect += cfg.interval_s + self._jitter()
                    if next_collect <= now:  # suspended or starved: skip, do not burst
                        next_collect = now + cfg.interval_s
                if self.spool.pending and self._clock() >= next_delivery:
                    result = sender.deliver(
                        self.spool, deadline=next_collect, stop=lambda: self.waker.stopping
                    )
                    if result.ok:
                        backoff.reset()
                        next_delivery = self._clock()
                    else:
                        next_delivery = self._clock() + backoff.next_delay()
                self.spool.sync()  # what was not acknowledged (yet) waits: make it durable
                if cfg.max_cycles is not None and self.cycles >= cfg.max_cycles:
                    break
            self._flush(sender)
        finally:
            sender.close()
            self.spool.close()
            self.waker.uninstall()
        return 0

    def _flush(self, sender: Sender) -> None:
        """On the way out: one delivery attempt of what waits, bounded in time."""
        if self.waker.signal is not None:
            log.info("stopping on %s", signal.Signals(self.waker.signal).name)
        if self.spool.pending:
            deadline = self._clock() + self.cfg.flush_timeout_s
            sender.deliver(self.spool, deadline=deadline)
        log.info(
            "stopped after %d report(s); %d spooled for the next start in %s",
            self.cycles,
            self.spool.pending,
            self.cfg.spool_dir,
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
            collector = Collector(cfg.host_id, cfg.interval_s, cfg.extra_mounts)
            self.waker.wait(ONCE_SAMPLE_S)
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
            return 0, f"report delivered to {cfg.server_url} ({result.delivered} sent)"
        finally:
            sender.close()
            self.spool.close()
            self.waker.uninstall()


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
