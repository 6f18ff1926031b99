"""The service checks themselves, and the ``Checker`` that runs them from several threads.

Each check returns a ``CheckResult`` and never raises; ``statusdash.agent.monitor`` schedules
them, the CLI's ``agent check`` runs them once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from statusdash.agent.checks.config import CheckSpec, ServicesConfig
from statusdash.agent.procs import ProcDir
from statusdash.safetext import printable
from statusdash.wire import HealthStatus

if TYPE_CHECKING:
    import httpx

HEALTHY, UNHEALTHY, UNKNOWN = (s.value for s in HealthStatus)
HEALTHY_UNIT_STATES = ("active", "reloading")


class CheckResult(TypedDict):
    """One check's outcome, in the shape of ``statusdash.schema.ServiceCheckResult``."""

    name: str
    kind: str
    status: str
    checked_at: str
    latency_ms: float | None
    detail: str


def _result(spec: CheckSpec, status: str, detail: str, started: float | None = None) -> CheckResult:
    latency = None if started is None else round((time.perf_counter() - started) * 1000, 2)
    return {
        "name": spec.name,
        "kind": spec.kind,
        "status": status,
        "checked_at": datetime.now(UTC).isoformat(),
        "latency_ms": latency,
        "detail": printable(detail)[:2000],  # controls escaped; a multi-line error keeps its lines
    }


def http_client(spec: CheckSpec) -> httpx.Client:
    """A client for ``spec``'s TLS settings: a fresh connection per check (no keep-alive, so a
    service that stops accepting connections is seen), no proxy from the environment."""
    import httpx

    from statusdash.tlsclient import client_context

    verify: Any = False  # plain http, or verify_tls: false
    if spec.http is not None and spec.http.startswith("https://") and spec.verify_tls:
        verify = client_context(spec.ca)
    return httpx.Client(
        verify=verify,
        trust_env=False,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"User-Agent": "statusdash-check"},
    )


def check_http(spec: CheckSpec, client: httpx.Client | None = None) -> CheckResult:
    import httpx

    assert spec.http is not None
    own = client is None
    c = http_client(spec) if client is None else client
    started = time.perf_counter()
    try:
        code = c.get(spec.http, timeout=spec.timeout).status_code
    except httpx.HTTPError as exc:
        return _result(spec, UNHEALTHY, f"{type(exc).__name__}: {exc}", started)
    finally:
        if own:
            c.close()
    ok = code in spec.expect_status if spec.expect_status else 200 <= code < 400
    want = ", ".join(map(str, spec.expect_status)) or "2xx/3xx"
    detail = f"HTTP {code}" + ("" if ok else f" (expected {want})")
    return _result(spec, HEALTHY if ok else UNHEALTHY, detail, started)


def check_tcp(spec: CheckSpec) -> CheckResult:
    assert spec.tcp is not None
    host, _, port = spec.tcp.rpartition(":")
    started = time.perf_counter()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=spec.timeout):
            pass
    except OSError as exc:
        return _result(spec, UNHEALTHY, f"{spec.tcp}: {exc.strerror or exc}", started)
    return _result(spec, HEALTHY, f"{spec.tcp} accepts connections", started)


def _linux_process_count(target: str) -> int:
    count = 0
    truncated = target[:15]  # the kernel keeps 15 characters of a name
    with ProcDir() as proc:
        for pid in proc.pids():
            try:
                comm = proc.read(pid, "comm", 64).rstrip(b"\n").decode(errors="replace")
                if comm == target:
                    count += 1
                elif len(target) > 15 and comm == truncated:  # the command line has it whole
                    argv0 = proc.read(pid, "cmdline").split(b"\0", 1)[0]
                    count += os.path.basename(argv0.decode(errors="replace")) == target
            except OSError:  # gone meanwhile, or hidden from us
                continue
    return count


def _process_count(target: str) -> int:
    """Processes named ``target``, as psutil's ``name()`` has it (a name longer than the
    kernel's 15 characters is completed from the command line); from /proc on Linux, ~10 times
    cheaper than psutil's ``process_iter``."""
    if sys.platform.startswith("linux"):
        return _linux_process_count(target)
    import psutil

    return sum(p.info.get("name") == target for p in psutil.process_iter(["name"]))


def check_process(spec: CheckSpec) -> CheckResult:
    assert spec.process is not None
    count = _process_count(spec.process)
    if count:
        return _result(spec, HEALTHY, f"{count} process(es) named {spec.process}")
    return _result(spec, UNHEALTHY, f"no process named {spec.process}")


def check_systemd(spec: CheckSpec) -> CheckResult:
    unit = spec.systemd
    assert unit is not None
    try:
        out = subprocess.run(
            ["systemctl", "is-active", "--", unit],
            capture_output=True,
            text=True,
            timeout=spec.timeout,
            check=False,
        )
    except FileNotFoundError:
        return _result(spec, UNKNOWN, "cannot check: systemctl not found")
    except subprocess.TimeoutExpired:
        return _result(spec, UNKNOWN, f"cannot check: systemctl took > {spec.timeout:g}s")
    state = out.stdout.strip()
    if not state:  # no systemd to ask (a container, say): that is no verdict on the unit
        why = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[0]
        return _result(spec, UNKNOWN, f"cannot check: systemctl: {why}")
    ok = state in HEALTHY_UNIT_STATES
    return _result(spec, HEALTHY if ok else UNHEALTHY, f"unit {unit} is {state}")


class Checker:
    """Runs checks (from several threads at once), keeping one HTTP client per TLS setting:
    a verifying TLS context costs milliseconds of CPU and ~1 MB to build, once, not per check."""

    def __init__(self) -> None:
        self._clients: dict[tuple[bool, Path | None], httpx.Client] = {}
        self._lock = threading.Lock()

    def _client(self, spec: CheckSpec) -> httpx.Client:
        verifying = bool(spec.http and spec.http.startswith("https://") and spec.verify_tls)
        key = (verifying, spec.ca if verifying else None)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = http_client(spec)
            return client

    def run(self, spec: CheckSpec) -> CheckResult:
        """One check; never raises (a check that cannot run is reported as unknown)."""
        try:
            if spec.kind == "http":
                return check_http(spec, self._client(spec))
            if spec.kind == "tcp":
                return check_tcp(spec)
            if spec.kind == "process":
                return check_process(spec)
            return check_systemd(spec)
        except Exception as exc:
            return _result(spec, UNKNOWN, f"check failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()


def run_check(spec: CheckSpec) -> CheckResult:
    """One check on its own; never raises."""
    checker = Checker()
    try:
        return checker.run(spec)
    finally:
        checker.close()


def run_checks(config: ServicesConfig, only: Iterable[str] | None = None) -> list[CheckResult]:
    """Run the checks (all, or those named in ``only``) in parallel; results in config order."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = None if only is None else set(only)
    specs = [s for s in config.services if wanted is None or s.name in wanted]
    if not specs:
        return []
    checker = Checker()
    try:
        with ThreadPoolExecutor(max_workers=min(8, len(specs)), thread_name_prefix="check") as p:
            return list(p.map(checker.run, specs))
    finally:
        checker.close()
