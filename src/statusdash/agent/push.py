"""Delivery of spooled reports over one kept-alive connection, oldest first, until acked."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import httpx

from statusdash import __version__
from statusdash.agent import deadline
from statusdash.agent.config import AgentConfig
from statusdash.agent.diagnose import explain, handshake_advice
from statusdash.agent.keep import ABSENT, Keep, Mark, parse_mark
from statusdash.agent.spool import Entry, Spool
from statusdash.tlsclient import httpx_verify
from statusdash.wire import MAX_BATCH_REPORTS, MAX_EVENTS

if TYPE_CHECKING:
    from statusdash.agent.monitor import EventQueue

log = logging.getLogger("statusdash.agent.push")

# After this many reports in a row refused as invalid, the fault is the server's (an older
# schema, say), not the reports': keep them spooled instead of setting them aside.
MAX_REJECT_STREAK = 3
REMIND_S = 300.0
MAX_EVENTS_BYTES = 192 * 1024  # under the server's wire.MAX_EVENTS_BYTES
# Kept reports sent again after a restore wait this long after a 429 or 503 without a
# Retry-After, and at most RESEND_PAUSE_MAX_S whatever it says; live reports go on meanwhile.
RESEND_PAUSE_S = 5.0
RESEND_PAUSE_MAX_S = 300.0
REFILL = {"X-Statusdash-Refill": "1"}  # marks a re-send: the server paces those (Retry-After)


class AnswerTooLarge(Exception):
    """The server's answer was longer than ``AgentConfig.response_max_bytes``."""


@dataclass
class Delivery:
    """What one delivery pass achieved."""

    delivered: int = 0
    error: str | None = None  # set when the pass stopped on a failure worth backing off
    unreachable: bool = False  # it stopped on a connection error: no server there (a restart)
    retry_after_s: float | None = None  # the server's Retry-After, when it answered one

    @property
    def ok(self) -> bool:
        return self.error is None


class Sender:
    """Posts spooled reports: one report alone, several through ``/api/metrics/batch``."""

    def __init__(self, cfg: AgentConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.cfg = cfg
        headers = {
            "User-Agent": f"statusdash-agent/{__version__}",
            "Content-Type": "application/json",
        }
        if cfg.api_key:
            headers["X-API-Key"] = cfg.api_key
        limits = httpx.Limits(
            max_connections=1,
            max_keepalive_connections=1,
            keepalive_expiry=70,  # below the server's 75 s: we close first, no race
        )
        self._deadline = deadline.DeadlineBackend()
        # a context built by us: httpx ignores cert= when verify= is a path
        verify = httpx_verify(cfg.server_url, cfg.ca, cfg.cert, cfg.key)
        self._client = httpx.Client(
            base_url=cfg.server_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(cfg.timeout_s, connect=min(5.0, cfg.timeout_s)),
            transport=transport or deadline.transport(verify, limits, self._deadline),
        )
        self.cap: float | None = None  # no request outlives this monotonic time (a stop's flush)
        self._batch_max = min(cfg.batch_max_reports, MAX_BATCH_REPORTS)
        self._reject_streak = 0
        self._last_error: str | None = None
        self._advised_for: str | None = None
        self._advice = ""
        self._warned_at = 0.0
        self.resend_after = 0.0  # monotonic: no kept report is sent again before it

    def close(self) -> None:
        self._client.close()

    # --- delivery ------------------------------------------------------------------------------
    def deliver(
        self,
        spool: Spool,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop: Callable[[], bool] | None = None,
    ) -> Delivery:
        """Send what waits, oldest first, until the spool is empty, an error, ``deadline``
        (checked between requests, after the first) or ``stop()``; then, while no live report
        waits, the kept reports a restored server lost (agent/keep.py), paced by its
        ``Retry-After``."""
        result = Delivery()
        isolate = 0  # after a batch was refused as invalid: send its reports one at a time
        while True:
            if result.delivered and (
                (deadline is not None and clock() >= deadline) or (stop is not None and stop())
            ):
                break
            limit = 1 if isolate else self._batch_max
            again = not spool.pending  # live (spooled) reports always go first
            if again and not (spool.keep.resend_waiting and time.monotonic() >= self.resend_after):
                break
            queue: Spool | Keep = spool.keep if again else spool
            entries = queue.oldest(limit, self.cfg.batch_max_bytes)
            try:
                resp = self._post(queue.read, entries, refill=again)
            except (httpx.TransportError, AnswerTooLarge) as exc:
                result.error = self._transport_failure(exc)
                result.unreachable = isinstance(exc, httpx.ConnectError)
                return result
            except OSError as exc:  # a spool file removed (or made unreadable) under us
                if again:
                    spool.keep.drop(entries, f"cannot read them ({exc})")
                    continue
                if spool.drop_missing(entries):
                    continue
                result.error = self._report(f"cannot read a waiting report: {exc}")
                return result
            isolate = max(0, isolate - 1)
            status = resp.status_code
            if status < 300:
                counted, mark = ack_count(resp), _mark(resp)
                if counted != len(entries):
                    result.error = self._report(self._not_acked(resp, counted, len(entries)))
                    return result
                if again:
                    spool.keep.observe(mark)
                    spool.keep.resent(entries)
                else:
                    spool.ack(entries, mark)
                self._reject_streak = 0
                result.delivered += len(entries)
                continue
            detail = _detail(resp)
            if status in (413, 422) and len(entries) > 1:
                if status == 413:
                    self._batch_max = max(1, len(entries) // 2)
                else:
                    isolate = len(entries)
                continue
            if again and status in (413, 422):
                spool.keep.drop(entries, f"refused by the server (HTTP {status}: {detail})")
                continue
            if again and status in (429, 503):  # the server asks us to slow down: only these
                self.resend_after = time.monotonic() + retry_pause(resp)
                continue
            if status in (413, 422) and self._reject_streak < MAX_REJECT_STREAK:
                self._reject_streak += 1
                spool.reject(entries[0], f"was refused by the server (HTTP {status}: {detail})")
                continue
            result.error = self._http_failure(status, detail)
            result.retry_after_s = retry_after(resp)
            return result
        if result.delivered and self._last_error is not None:
            log.info("server reachable again; delivered %d report(s)", result.delivered)
            self._last_error = self._advised_for = None
        return result

    def _post(
        self, read: Callable[[Entry], bytes], entries: list[Entry], refill: bool = False
    ) -> httpx.Response:
        if len(entries) == 1:
            path, body = "/api/metrics/report", read(entries[0])
        else:
            parts = [read(e) for e in entries]
            path, body = "/api/metrics/batch", b'{"reports":[' + b",".join(parts) + b"]}"
        return self._send(path, body, REFILL if refill else None)

    def _send(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """One POST, its answer read whole but capped, both tries within one deadline."""
        end = time.monotonic() + self.cfg.push_timeout_s
        self._deadline.deadline = end if self.cap is None else min(end, self.cap)
        try:
            return self._post_capped(path, body, headers)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            # the kept-alive connection may have been closed by the server while idle: one
            # more try on a fresh one (report ids make a replay harmless; so does an event,
            # which says what a service's status is)
            return self._post_capped(path, body, headers)

    def _post_capped(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        cap = self.cfg.response_max_bytes
        with self._client.stream("POST", path, content=body, headers=headers) as resp:
            length = resp.headers.get("content-length", "")
            if length.isdigit() and int(length) > cap:  # h11 refused any other value already
                raise AnswerTooLarge(f"{length} bytes")
            data = bytearray()
            for chunk in resp.iter_bytes():  # decoded: a compressed bomb is counted as it grows
                data += chunk
                if len(data) > cap:
                    raise AnswerTooLarge(f"more than {cap} bytes")
        after = resp.headers.get("Retry-After")  # paces backoff and refills; nothing else kept
        headers = {"Retry-After": after} if after is not None else {}
        return httpx.Response(resp.status_code, headers=headers, content=bytes(data))

    def _not_acked(self, resp: httpx.Response, counted: int | None, sent: int) -> str:
        where = f"the server at {self.cfg.server_url} answered HTTP {resp.status_code}"
        if counted is None:  # a proxy's page, say: nothing says the reports were stored
            return (
                f"{where} without an acknowledgement ({resp.text[:100]!r}): is it a statusdash"
                " server? Reports kept spooled"
            )
        return (
            f"{where} acknowledging {counted} of the {sent} report(s) sent"
            f" ({resp.text[:100]!r}); all {sent} kept spooled"
        )

    def send_events(
        self,
        events: EventQueue,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Delivery:
        """Post waiting service events to ``/api/events``, oldest first, over the connection
        that carries the reports, until none wait, an error, or ``deadline`` (after the first).

        Events the server refuses as such (400, 404 from an older server, 413, 422) are
        dropped with a warning: sending them again cannot help. Any other failure keeps them.
        """
        result = Delivery()
        while events:
            if result.delivered and deadline is not None and clock() >= deadline:
                break
            batch = events.batch(MAX_EVENTS, MAX_EVENTS_BYTES)
            try:
                resp = self._send("/api/events", b'{"events":[' + b",".join(batch) + b"]}")
            except (httpx.TransportError, AnswerTooLarge) as exc:
                result.error = self._transport_failure(exc)
                result.unreachable = isinstance(exc, httpx.ConnectError)
                return result
            status = resp.status_code
            if status < 300:
                try:
                    int(resp.json()["accepted"])
                except (ValueError, KeyError, TypeError):
                    result.error = self._report(
                        f"the server at {self.cfg.server_url} answered HTTP {status} to service"
                        f" events without an acknowledgement ({resp.text[:100]!r}); kept"
                    )
                    return result
                events.ack(len(batch))
                result.delivered += len(batch)
                continue
            detail = _detail(resp)
            if status in (400, 404, 405, 413, 422):
                events.ack(len(batch))
                log.warning(
                    "the server refused %d service event(s) (HTTP %d: %s); dropped them",
                    len(batch),
                    status,
                    detail,
                )
                continue
            result.error = self._http_failure(status, detail, "service events")
            result.retry_after_s = retry_after(resp)
            return result
        return result

    # --- failures ------------------------------------------------------------------------------
    def _transport_failure(self, exc: Exception) -> str:
        cfg = self.cfg
        if isinstance(exc, AnswerTooLarge):
            return self._report(
                f"the server at {cfg.server_url} sent an answer over the"
                f" {cfg.response_max_bytes // 1024} KiB cap ({exc}); gave up on it,"
                " kept the reports"
            )
        if isinstance(exc, httpx.TimeoutException) and self._deadline.expired():
            return self._report(
                f"the server at {cfg.server_url} did not answer within the push deadline"
                f" ({cfg.push_timeout_s:g} s); gave up on the request, kept the reports"
            )
        explained = explain(exc, cfg.server_url, cfg.cert is not None)
        message = explained.message
        if explained.handshake_suspect and cfg.cert is not None:
            if explained.message != self._advised_for:  # check the certificate once a streak
                self._advice = handshake_advice(cfg.ca, cfg.cert, cfg.key)
                self._advised_for = explained.message
            message += "; " + self._advice
        return self._report(message)

    def _http_failure(self, status: int, detail: str, what: str = "reports") -> str:
        if status == 401:
            how = "client certificate" if self.cfg.cert else "API key"
            message = f"the server refused our credentials ({how}): {detail}"
        elif status == 403:
            message = (
                f"the server refused {what} for host {self.cfg.host_id!r}: {detail}"
                " (the certificate's CN, or the API key's host, must be this host id)"
            )
        elif status in (413, 422):
            message = f"the server refuses every report (HTTP {status}): {detail}; kept spooled"
        else:
            message = f"the server answered HTTP {status}: {detail}"
        return self._report(message)

    def _report(self, message: str) -> str:
        """Warn when the failure changes, and remind every few minutes while it lasts."""
        now = time.monotonic()
        if message != self._last_error:
            log.warning("%s", message)
            self._warned_at = now
        elif now - self._warned_at >= REMIND_S:
            log.warning("still failing: %s", message)
            self._warned_at = now
        else:
            log.debug("%s", message)
        self._last_error = message
        return message


def ack_count(resp: httpx.Response) -> int | None:
    """``accepted + duplicates`` of an acknowledgement; ``None`` if the answer is not one."""
    try:
        ack = resp.json()
    except ValueError:
        return None
    if not isinstance(ack, dict):
        return None
    counts = [ack.get("accepted"), ack.get("duplicates")]
    if not all(type(n) is int and n >= 0 for n in counts):  # bool is no count
        return None
    return sum(cast(list[int], counts))


def retry_after(resp: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds (the delay form; a date is not used)."""
    try:
        value = float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if 0 <= value < float("inf") else None


def _mark(resp: httpx.Response) -> Mark:
    """The acknowledgement's high-water mark (``ABSENT`` from a server that sends none)."""
    try:
        return parse_mark(resp.json())
    except ValueError:
        return ABSENT


def retry_pause(resp: httpx.Response) -> float:
    """Seconds the server asked us to wait (``Retry-After`` in seconds), within bounds."""
    seconds = retry_after(resp)
    return min(max(RESEND_PAUSE_S if seconds is None else seconds, 1.0), RESEND_PAUSE_MAX_S)


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return str(body.get("detail") or body.get("error") or resp.reason_phrase)[:500]
    except (ValueError, AttributeError):
        return (resp.text or resp.reason_phrase)[:200]


def encode(report: dict[str, object]) -> bytes:
    """A report as compact JSON bytes, as they are spooled and sent."""
    return json.dumps(report, separators=(",", ":"), allow_nan=False).encode()
