"""Notification delay under an event flood: one host's critical alert, from event to webhook.

Each round starts a real server (plain HTTP on loopback, API keys, a fresh SQLite file) whose
one webhook is a local receiver that takes ``reply_ms`` to answer, like a chat service. Then:

- ``quiet_ms``: after a warm-up notice, db-1 posts a critical SYSTEM_ALERT_TRIGGERED; the time
  from the POST until the receiver has its notice;
- ``flood_ms``: web-1 first posts ``flood`` warning alerts (MAX_EVENT_ALERTS_PER_HOST raised so
  they are all accepted), then db-1 its critical one: the same delay, measured the same way;
- ``flood_drain_s``: how long web-1's flood takes to be delivered, for scale: what db-1 would
  have waited behind a first-in-first-out queue.

That is with grouping off (``NOTIFY_GROUP_WAIT_S=0``, every notice alone). The ``grouped_``
figures are the same round with grouping on (``--group-wait``, ``--group-interval``): db-1's
quiet critical is resolved (one update) before the flood, so its critical under the flood
starts a new group like the quiet one did; ``grouped_flood_ms`` minus the wait is what the
flood added. ``grouped_flood_pages`` counts the messages that carried web-1's flood (off: one
per alert).

The median and range over ``rounds`` rounds. ``python -m bench.notify_flood [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from statusdash.server import keys
from statusdash.server.runner import uvicorn_config
from statusdash.settings import Settings

FLOOD = 500
REPLY_MS = 50.0
ROUNDS = 3
DEADLINE_S = 120.0  # for any one wait: the bench never hangs
GROUP_WAIT_S = 2.0
GROUP_INTERVAL_S = 5.0


class Receiver:
    """A webhook receiver on loopback: when each notice arrived, by alert host and subject."""

    def __init__(self, reply_ms: float) -> None:
        self.arrived: dict[tuple[str, str, str], float] = {}  # (event, host, subject)
        self.messages: list[set[str]] = []  # the hosts of each message
        lock = threading.Lock()
        arrived, messages = self.arrived, self.messages

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                told = body.get("alerts") or [{"event": body["event"], "alert": body["alert"]}]
                with lock:
                    now = time.monotonic()
                    for a in told:
                        arrived[(a["event"], a["alert"]["host"], a["alert"]["subject"])] = now
                    messages.append({a["alert"]["host"] for a in told})
                time.sleep(reply_ms / 1000)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()

    def wait(self, host: str, subject: str, event: str = "firing") -> float:
        key = (event, host, subject)
        deadline = time.monotonic() + DEADLINE_S
        while key not in self.arrived:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no notice for {key} within {DEADLINE_S:g} s")
            time.sleep(0.002)
        return self.arrived[key]

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(data: Path, webhook: str, cap: int, group: tuple[float, float]) -> Iterator[str]:
    settings = Settings(
        _env_file=None,
        status_admin_password="bench-admin-password-123",
        status_jwt_secret="bench-jwt-secret-0123456789abcdef0123456789",
        status_data_dir=data,
        status_port=_free_port(),
        mtls_enabled=False,
        db_synchronous="NORMAL",
        webhook_urls=webhook,
        max_event_alerts_per_host=cap,
        notify_group_wait_s=group[0],
        notify_group_interval_s=group[1],
    )
    server = uvicorn.Server(uvicorn_config(settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.status_port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _events(names: list[str], severity: str, kind: str = "TRIGGERED") -> dict[str, Any]:
    payloads = [{"alertName": n, "severity": severity} for n in names]
    return {"events": [{"type": f"SYSTEM_ALERT_{kind}", "payload": p} for p in payloads]}


def post(client: httpx.Client, body: dict[str, Any]) -> None:
    client.post("/api/events", json=body).raise_for_status()


def _round(flood: int, reply_ms: float, group: tuple[float, float]) -> dict[str, float]:
    """One round; ``group`` is (wait, interval), wait 0: grouping off."""
    receiver = Receiver(reply_ms)
    hook = f"http://127.0.0.1:{receiver.port}/hook"
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            _server(Path(tmp), hook, flood + 10, group) as url,
        ):
            db_path = Path(tmp) / "statusdash.db"

            def agent(host: str) -> httpx.Client:
                key = keys.issue(db_path, host).key
                return httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60)

            with agent("db-1") as db, agent("web-1") as web:
                post(db, _events(["warm-up"], "info"))  # first connection, first import
                receiver.wait("db-1", "warm-up")
                t0 = time.monotonic()
                post(db, _events(["quiet"], "critical"))
                quiet = receiver.wait("db-1", "quiet") - t0
                if group[0] > 0:  # its group ends, so the next critical starts a new one
                    post(db, _events(["quiet"], "critical", "RESOLVED"))
                    receiver.wait("db-1", "quiet", "resolved")
                    time.sleep(0.5)
                names = [f"flood-{i}" for i in range(flood)]
                before = len(receiver.messages)
                t1 = time.monotonic()
                for i in range(0, flood, 250):
                    post(web, _events(names[i : i + 250], "warning"))
                t2 = time.monotonic()
                post(db, _events(["under flood"], "critical"))
                loud = receiver.wait("db-1", "under flood") - t2
                drained = max(receiver.wait("web-1", n) for n in names) - t1
                pages = sum(1 for m in receiver.messages[before:] if "web-1" in m)
    finally:
        receiver.close()
    return {
        "quiet_ms": quiet * 1000,
        "flood_ms": loud * 1000,
        "flood_drain_s": drained,
        "flood_pages": pages,
    }


def run(
    rounds: int = ROUNDS,
    flood: int = FLOOD,
    reply_ms: float = REPLY_MS,
    group_wait_s: float = GROUP_WAIT_S,
    group_interval_s: float = GROUP_INTERVAL_S,
) -> dict[str, Any]:
    """The figures: median and range of each over ``rounds`` fresh servers, grouping off and
    on (``grouped_``; ``group_wait_s`` 0 skips those)."""
    out: dict[str, Any] = {"rounds": rounds, "flood": flood, "reply_ms": reply_ms}
    modes = [("", (0.0, group_interval_s))]
    if group_wait_s > 0:
        modes.append(("grouped_", (group_wait_s, group_interval_s)))
        out["group_wait_s"], out["group_interval_s"] = group_wait_s, group_interval_s
    for prefix, group in modes:
        results = [_round(flood, reply_ms, group) for _ in range(rounds)]
        for name in ("quiet_ms", "flood_ms", "flood_drain_s", "flood_pages"):
            values = [r[name] for r in results]
            out[prefix + name] = round(statistics.median(values), 3)
            out[f"{prefix}{name}_range"] = [round(min(values), 3), round(max(values), 3)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--flood", type=int, default=FLOOD)
    parser.add_argument("--reply-ms", type=float, default=REPLY_MS)
    parser.add_argument("--group-wait", type=float, default=GROUP_WAIT_S, help="0: off only")
    parser.add_argument("--group-interval", type=float, default=GROUP_INTERVAL_S)
    args = parser.parse_args(argv)
    figures = run(args.rounds, args.flood, args.reply_ms, args.group_wait, args.group_interval)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
