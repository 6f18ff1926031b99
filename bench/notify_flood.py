"""Notification delay under an event flood: one host's critical alert, from event to webhook.

Each round starts a real server (plain HTTP on loopback, API keys, a fresh SQLite file) whose
one webhook is a local receiver that takes ``reply_ms`` to answer, like a chat service. Then:

- ``quiet_ms``: after a warm-up notice, db-1 posts a critical SYSTEM_ALERT_TRIGGERED; the time
  from the POST until the receiver has its notice;
- ``flood_ms``: web-1 first posts ``flood`` warning alerts (MAX_EVENT_ALERTS_PER_HOST raised so
  they are all accepted), then db-1 its critical one: the same delay, measured the same way;
- ``flood_drain_s``: how long web-1's flood takes to be delivered, for scale: what db-1 would
  have waited behind a first-in-first-out queue.

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


class Receiver:
    """A webhook receiver on loopback: when each notice arrived, by alert host and subject."""

    def __init__(self, reply_ms: float) -> None:
        self.arrived: dict[tuple[str, str], float] = {}
        lock = threading.Lock()
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    arrived[(body["alert"]["host"], body["alert"]["subject"])] = time.monotonic()
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

    def wait(self, key: tuple[str, str]) -> float:
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
def _server(data: Path, webhook: str, cap: int) -> Iterator[str]:
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


def _events(names: list[str], severity: str) -> dict[str, Any]:
    payloads = [{"alertName": n, "severity": severity} for n in names]
    return {"events": [{"type": "SYSTEM_ALERT_TRIGGERED", "payload": p} for p in payloads]}


def post(client: httpx.Client, body: dict[str, Any]) -> None:
    client.post("/api/events", json=body).raise_for_status()


def _round(flood: int, reply_ms: float) -> dict[str, float]:
    receiver = Receiver(reply_ms)
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            _server(Path(tmp), f"http://127.0.0.1:{receiver.port}/hook", flood + 10) as url,
        ):
            db_path = Path(tmp) / "statusdash.db"

            def agent(host: str) -> httpx.Client:
                key = keys.issue(db_path, host).key
                return httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60)

            with agent("db-1") as db, agent("web-1") as web:
                post(db, _events(["warm-up"], "critical"))  # first connection, first import
                receiver.wait(("db-1", "warm-up"))
                t0 = time.monotonic()
                post(db, _events(["quiet"], "critical"))
                quiet = receiver.wait(("db-1", "quiet")) - t0
                names = [f"flood-{i}" for i in range(flood)]
                t1 = time.monotonic()
                for i in range(0, flood, 250):
                    post(web, _events(names[i : i + 250], "warning"))
                t2 = time.monotonic()
                post(db, _events(["under flood"], "critical"))
                loud = receiver.wait(("db-1", "under flood")) - t2
                drained = max(receiver.wait(("web-1", n)) for n in names) - t1
    finally:
        receiver.close()
    return {"quiet_ms": quiet * 1000, "flood_ms": loud * 1000, "flood_drain_s": drained}


def run(rounds: int = ROUNDS, flood: int = FLOOD, reply_ms: float = REPLY_MS) -> dict[str, Any]:
    """The figures: median and range of each over ``rounds`` fresh servers."""
    results = [_round(flood, reply_ms) for _ in range(rounds)]
    out: dict[str, Any] = {"rounds": rounds, "flood": flood, "reply_ms": reply_ms}
    for name in ("quiet_ms", "flood_ms", "flood_drain_s"):
        values = [r[name] for r in results]
        out[name] = round(statistics.median(values), 3)
        out[f"{name}_range"] = [round(min(values), 3), round(max(values), 3)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--flood", type=int, default=FLOOD)
    parser.add_argument("--reply-ms", type=float, default=REPLY_MS)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rounds, args.flood, args.reply_ms), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
