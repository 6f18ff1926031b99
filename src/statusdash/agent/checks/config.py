"""Service checks run by the agent: HTTP(S), TCP connect, process running, systemd unit active.

``services.yaml`` lists them (see docs/agent.md); ``statusdash.agent.monitor`` runs each on its
own interval and sends events on a change or a heartbeat. Plain dataclasses and dicts, no
pydantic: the lean agent daemon runs this for months. PyYAML is imported by ``load_services``
alone, in the CLI; the daemon gets the parsed checks as JSON (``ServicesConfig.to_dict``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    import httpx

KINDS = ("http", "tcp", "process", "systemd")
# = statusdash.schema.HealthStatus (importing the schema would load pydantic into the daemon)
HEALTHY, UNHEALTHY, UNKNOWN = "healthy", "unhealthy", "unknown"
HEALTHY_UNIT_STATES = ("active", "reloading")
MIN_INTERVAL_S = 0.1
MAX_TIMEOUT_S = 120.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_HTTP = re.compile(r"^https?://[^\s/?#]+\S*$")
_TCP = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):(\d{1,5})$")
_SPEC_FIELDS = (*("name", *KINDS), "expect_status", "ca", "verify_tls", "timeout", "interval")


class ChecksError(ValueError):
    """services.yaml cannot be used; the message says where and why."""


class CheckResult(TypedDict):
    """One check's outcome, in the shape of ``statusdash.schema.ServiceCheckResult``."""

    name: str
    kind: str
    status: str
    checked_at: str
    latency_ms: float | None
    detail: str


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One service check; exactly one of ``http``, ``tcp``, ``process``, ``systemd``."""

    name: str
    http: str | None = None
    tcp: str | None = None
    process: str | None = None
    systemd: str | None = None
    expect_status: tuple[int, ...] = ()  # empty: any 2xx or 3xx
    ca: Path | None = None  # CA file to trust for https
    verify_tls: bool = True
    timeout: float = 5.0
    interval: float | None = None

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def target(self) -> str:
        return str(getattr(self, self.kind))


@dataclass(frozen=True, slots=True)
class ServicesConfig:
    heartbeat: float = 60.0
    interval: float = 30.0
    services: tuple[CheckSpec, ...] = field(default_factory=tuple)

    def interval_of(self, spec: CheckSpec) -> float:
        return spec.interval or self.interval

    def expected_s(self, spec: CheckSpec) -> float:
        """How long the server should wait for news of ``spec`` before calling it unknown."""
        return round(max(self.heartbeat, self.interval_of(spec)) * 2.5, 3)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``parse_services`` reads it back (how the CLI hands it to the daemon)."""
        out = []
        for s in self.services:
            d: dict[str, Any] = {"name": s.name, s.kind: s.target, "timeout": s.timeout}
            if s.expect_status:
                d["expect_status"] = list(s.expect_status)
            if s.ca is not None:
                d["ca"] = str(s.ca)
            if not s.verify_tls:
                d["verify_tls"] = False
            if s.interval is not None:
                d["interval"] = s.interval
            out.append(d)
        return {"heartbeat": self.heartbeat, "interval": self.interval, "services": out}


# --- services.yaml --------------------------------------------------------------------------------


def _seconds(v: Any, where: str, low: float, high: float | None = None) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        value = float(v)
    else:
        m = _DURATION.match(str(v))
        if not m:
            raise ChecksError(f"{where}: {v!r} is not a duration like 500ms, 10s, 5m")
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ChecksError(f"{where}: must be {bound} seconds (got {v!r})")
    return value


def _text(v: Any, where: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > 255:
        raise ChecksError(f"{where}: must be a non-empty string of at most 255 characters")
    if pattern is not None and not pattern.match(v):
        raise ChecksError(f"{where}: {v!r} is not {hint}")
    return v


def _statuses(v: Any, where: str) -> tuple[int, ...]:
    items = v if isinstance(v, list) else [v]
    for code in items:
        if not isinstance(code, int) or isinstance(code, bool) or not 100 <= code <= 599:
            raise ChecksError(f"{where}: {code!r} is not an HTTP status (100-599)")
    return tuple(items)


def _spec(raw: Any, where: str, base: Path | None) -> CheckSpec:
    if not isinstance(raw, dict):
        raise ChecksError(f"{where}: must be a mapping like {{name: web, tcp: '127.0.0.1:80'}}")
    unknown = sorted(str(k) for k in raw if k not in _SPEC_FIELDS)
    if unknown:
        raise ChecksError(f"{where}.{unknown[0]}: unknown field (known: {', '.join(_SPEC_FIELDS)})")
    name = _text(raw.get("name"), f"{where}.name")
    kinds = [k for k in KINDS if raw.get(k) is not None]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        raise ChecksError(f"{where}: give exactly one of {', '.join(KINDS)} (found {found})")
    kind = kinds[0]
    target = _text(
        raw[kind],
        f"{where}.{kind}",
        {"http": _HTTP, "tcp": _TCP}.get(kind),
        {"http": "an http:// or https:// URL", "tcp": "host:port"}.get(kind, ""),
    )
    if kind == "tcp" and not 1 <= int(target.rpartition(":")[2]) <= 65535:
        raise ChecksError(f"{where}.tcp: port of {target!r} must be 1-65535")
    ca = raw.get("ca")
    if ca is not None:
        ca = Path(_text(ca, f"{where}.ca")).expanduser()
        if base is not None and not ca.is_absolute():
            ca = base / ca
    verify = raw.get("verify_tls", True)
    if not isinstance(verify, bool):
        raise ChecksError(f"{where}.verify_tls: must be true or false")
    interval = raw.get("interval")
    return CheckSpec(
        name=name,
        http=target if kind == "http" else None,
        tcp=target if kind == "tcp" else None,
        process=target if kind == "process" else None,
        systemd=target if kind == "systemd" else None,
        expect_status=_statuses(raw.get("expect_status", []), f"{where}.expect_status"),
        ca=ca,
        verify_tls=verify,
        timeout=_seconds(raw.get("timeout", 5.0), f"{where}.timeout", 0.001, MAX_TIMEOUT_S),
        interval=None
        if interval is None
        else _seconds(interval, f"{where}.interval", MIN_INTERVAL_S),
    )


def parse_services(raw: Any, base: Path | None = None) -> ServicesConfig:
    """services.yaml's content (or ``to_dict``'s) as a config; relative ``ca`` paths are taken
    from ``base``. ChecksError says where and what."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ChecksError("file: must be a mapping with heartbeat, interval and services")
    unknown = sorted(str(k) for k in raw if k not in ("heartbeat", "interval", "services"))
    if unknown:
        raise ChecksError(f"{unknown[0]}: unknown field (known: heartbeat, interval, services)")
    items = raw.get("services") or []
    if not isinstance(items, list):
        raise ChecksError("services: must be a list of checks")
    specs = tuple(_spec(item, f"services[{i}]", base) for i, item in enumerate(items))
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ChecksError(f"services: service names must be unique: {', '.join(dup)}")
    return ServicesConfig(
        heartbeat=_seconds(raw.get("heartbeat", 60.0), "heartbeat", MIN_INTERVAL_S),
        interval=_seconds(raw.get("interval", 30.0), "interval", MIN_INTERVAL_S),
        services=specs,
    )


def load_services(path: Path) -> ServicesConfig:
    """Read services.yaml; ChecksError names the file, the entry and the problem."""
    import yaml  # here only: the daemon never parses YAML

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        config = parse_services(raw, path.parent)
    except OSError as exc:
        raise ChecksError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ChecksError(f"{path}: not valid YAML: {exc}") from None
    except ChecksError as exc:
        raise ChecksError(f"{path}: {exc}") from None
    for i, spec in enumerate(config.services):
        if spec.ca is not None and not spec.ca.is_file():
            raise ChecksError(f"{path}: services[{i}].ca: {spec.ca} is not a readable file")
    return config


# --- the checks -----------------------------------------------------------------------------------


def _result(spec: CheckSpec, status: str, detail: str, started: float | None = None) -> CheckResult:
    latency = None if started is None else round((time.perf_counter() - started) * 1000, 2)
    return {
        "name": spec.name,
        "kind": spec.kind,
        "status": status,
        "checked_at": datetime.now(UTC).isoformat(),
        "latency_ms": latency,
        "detail": detail[:2000],
    }


def http_client(spec: CheckSpec) -> httpx.Client:
    """A client for ``spec``'s TLS settings: a fresh connection per check (no keep-alive, so a
    service that stops accepting connections is seen), no proxy from the environment."""
    import httpx

    from statusdash.tls import client_context

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


def _read(path: str, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)  # not open(): a buffered file object costs 3 times more
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _linux_process_count(target: str) -> int:
    count = 0
    truncated = target[:15]  # the kernel keeps 15 characters of a name
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            comm = _read(f"/proc/{pid}/comm", 64).rstrip(b"\n").decode(errors="replace")
            if comm == target:
                count += 1
            elif len(target) > 15 and comm == truncated:  # the command line has it whole
                argv0 = _read(f"/proc/{pid}/cmdline", 4096).split(b"\0", 1)[0]
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
