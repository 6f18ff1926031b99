"""The benchmark's server: the real app under uvicorn (uvloop + httptools), in its own process.

``python -m bench.serve`` builds the app with the product's ``runner.uvicorn_config`` from
``Settings(_env_file=None, ...)`` with fresh secrets (nothing is read from ``.env``), then adds two
routes that exist only in this bench server: ``POST /bench/bare`` reads the body, parses it with
``json.loads`` and discards it (the framework's ceiling the ingest rate is compared with) and
``GET /bench/stats`` reports the storage's commit count. ``create_app`` refuses unguarded routes
when it builds the app; these are added afterwards, on purpose, and never in the product.

The parent side lives here too: :func:`provision` writes credentials into a fresh data directory
and :func:`start` runs the process on a free loopback port and waits until it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.loadgen import Client

BARE_PATH = "/bench/bare"
STATS_PATH = "/bench/stats"
LAG_PATH = "/bench/lag"
ROOT = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    """The bench server did not start or stop as it should."""


# --- inside the server process -------------------------------------------------------------------
def add_bench_routes(app: FastAPI) -> None:
    """``POST /bench/bare`` (read, ``json.loads``, discard) and ``GET /bench/stats``."""
    from statusdash.server.context import context_of

    async def bare(request: Request) -> JSONResponse:
        json.loads(await request.body())
        return JSONResponse({"accepted": 1, "duplicates": 0})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"commits": context_of(request.app).storage.commits})

    probe = _LagProbe()

    async def lag(request: Request) -> JSONResponse:
        """The event loop's lateness since the last call (the first call starts the probe)."""
        return JSONResponse(probe.take())

    app.post(BARE_PATH, include_in_schema=False)(bare)
    app.get(STATS_PATH, include_in_schema=False)(stats)
    app.get(LAG_PATH, include_in_schema=False)(lag)


class _LagProbe:
    """Samples how late the server's loop wakes a 5 ms sleeper: how long the loop was blocked,
    whatever the clients' own scheduling (a figure the clients' latencies cannot separate)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            self.lags.append(max(0.0, loop.time() - t - 0.005))

    def take(self) -> dict[str, float]:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())
        lags, self.lags = sorted(self.lags), []
        if not lags:
            return {"samples": 0, "p99_ms": 0.0, "max_ms": 0.0}
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        return {"samples": len(lags), "p99_ms": p99 * 1e3, "max_ms": lags[-1] * 1e3}


def build(data_dir: Path, tls: bool, synchronous: str, port: int) -> Any:
    """The uvicorn config of the bench server: the product's, plus the bench routes."""
    from statusdash.server.runner import uvicorn_config
    from statusdash.settings import Settings

    settings = Settings(
        _env_file=None,
        status_admin_password=secrets.token_urlsafe(18),
        status_jwt_secret=secrets.token_urlsafe(48),
        status_data_dir=data_dir,
        vault_path=data_dir / "vault",
        status_bind="127.0.0.1",
        status_port=port,
        mtls_enabled=tls,
        db_synchronous=synchronous,
        # The load generator sends many reports per host for the same moments; the per-host
        # ingest limit (tests/server/test_hardening_limits.py) would refuse them.
        ingest_max_reports_per_interval=10_000,
    )
    extra: dict[str, Any] = {"loop": "uvloop"}
    if not tls:
        extra["http"] = "httptools"  # with mTLS the runner sets its httptools-based class
    config = uvicorn_config(settings, log_level="warning", **extra)
    if not isinstance(config.app, FastAPI):
        raise TypeError(f"uvicorn_config gave a {type(config.app).__name__}, not the FastAPI app")
    add_bench_routes(config.app)
    return config


def _announce(server: Any, config: Any, ready_file: Path, port: int) -> None:
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or server.should_exit:
            return
        time.sleep(0.02)
    cls = config.http_protocol_class
    info = {
        "pid": os.getpid(),
        "port": port,
        "http": f"{cls.__module__}.{cls.__qualname__}",
        "httptools": any(c.__name__ == "HttpToolsProtocol" for c in cls.__mro__),
        "loop": config.loop,
        "tls": config.is_ssl,
    }
    tmp = ready_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(ready_file)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--ready-file", type=Path, required=True, help="written once serving")
    ap.add_argument("--tls", action="store_true", help="HTTPS with client certificates (mTLS)")
    ap.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    ap.add_argument(
        "--gc",
        choices=["default", "tuned"],
        default="default",
        help="tuned: gc.freeze() after start-up and a gen-0 threshold of 50,000 (an experiment)",
    )
    args = ap.parse_args(argv)

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # a free port, held from here on: no race with other processes
    port = int(sock.getsockname()[1])
    try:
        config = build(args.data_dir, args.tls, args.synchronous, port)
    except Exception as exc:
        print(f"bench server: cannot build the app: {exc}", file=sys.stderr)
        return 1
    if args.gc == "tuned":
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
    server = uvicorn.Server(config)
    threading.Thread(
        target=_announce, args=(server, config, args.ready_file, port), daemon=True
    ).start()
    server.run(sockets=[sock])
    return 0


# --- the parent's side -------------------------------------------------------------------------
def provision(data: Path, hosts: list[str], tls: bool) -> tuple[list[Client], str | None]:
    """Credentials bound to each host (an API key, or with mTLS a client certificate) and the CA."""
    data.mkdir(parents=True, exist_ok=True)
    if not tls:
        from statusdash.server import keys

        return [Client(h, api_key=keys.issue(data / "statusdash.db", h).key) for h in hosts], None
    from statusdash.pki.ca import init_ca, issue_client_cert, issue_server_cert
    from statusdash.pki.vault import paths

    vault = data / "vault"
    init_ca(vault)
    issue_server_cert(vault, ["localhost", "127.0.0.1"])
    clients = []
    for h in hosts:
        cert = issue_client_cert(vault, h, "agent")
        clients.append(Client(h, cert=str(cert.cert_path), key=str(cert.key_path)))
    return clients, str(paths(vault).ca_cert)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Handle:
    """A running bench server process, seen from the benchmark."""

    proc: subprocess.Popen[bytes]
    info: dict[str, Any]
    log: Path
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    def log_tail(self) -> str:
        return _tail(self.log)

    def commits(self) -> int:
        """How many group commits the storage service has made so far."""
        scheme = "https" if self.ssl_context else "http"
        url = f"{scheme}://localhost:{self.info['port']}{STATS_PATH}"
        with urllib.request.urlopen(url, timeout=10, context=self.ssl_context) as resp:  # noqa: S310
            return int(json.load(resp)["commits"])

    def stop(self, timeout: float = 30.0) -> None:
        """Stop gracefully (uvicorn drains, storage commits what is queued), kill if stuck."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise ServerError(f"the bench server did not stop within {timeout:.0f} s") from None


def start(
    work: Path,
    tls: bool,
    synchronous: str = "FULL",
    gc_mode: str = "default",
    client: Client | None = None,
) -> Handle:
    """Start ``python -m bench.serve`` on ``work/data`` and wait (30 s at most) until it serves."""
    ready, log = work / "ready.json", work / "server.log"
    cmd = [sys.executable, "-m", "bench.serve", "--data-dir", str(work / "data")]
    cmd += ["--ready-file", str(ready), "--synchronous", synchronous, "--gc", gc_mode]
    cmd += ["--tls"] if tls else []
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            raise ServerError(f"the bench server did not start:\n{_tail(log)}")
        time.sleep(0.05)
    ctx = None
    if tls and client is not None and client.cert:
        from statusdash.tlsclient import client_context

        ca = work / "data" / "vault" / "ca" / "ca.crt"
        ctx = client_context(ca, Path(client.cert), Path(client.key) if client.key else None)
    return Handle(proc, json.loads(ready.read_text()), log, ctx)


if __name__ == "__main__":
    raise SystemExit(main())
