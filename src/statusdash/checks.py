"""Service checks run by the agent: HTTP(S), TCP connect, process running, systemd unit active.

``services.yaml`` lists them; each runs on its own interval (``CheckSchedule``), and
``ChangeTracker`` turns results into ``POST /api/events`` events only when a status changes or a
heartbeat is due, not on every check::

    heartbeat: 60s          # resend unchanged statuses this often (default 60 s)
    interval: 30s           # default check interval
    services:
      - {name: web, http: "https://127.0.0.1/health", expect_status: [200, 204], ca: /etc/ca.crt}
      - {name: postgres, tcp: "127.0.0.1:5432", interval: 10s}
      - {name: nginx-workers, process: nginx}
      - {name: docker, systemd: docker.service}
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from statusdash.schema import HealthStatus, ServiceCheckResult

KINDS = ("http", "tcp", "process", "systemd")
HEALTHY_UNIT_STATES = ("active", "reloading")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ChecksError(ValueError):
    """services.yaml cannot be used; the message says where and why."""


def _seconds(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    m = _DURATION.match(str(v))
    if not m:
        raise ValueError(f"{v!r} is not a duration like 500ms, 10s, 5m")
    return float(m.group(1)) * _UNITS[m.group(2)]


class CheckSpec(BaseModel):
    """One service check; exactly one of ``http``, ``tcp``, ``process``, ``systemd``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    http: str | None = Field(default=None, pattern=r"^https?://")
    tcp: str | None = Field(default=None, pattern=r"^\[?[^\s\]]+\]?:\d{1,5}$")
    process: str | None = Field(default=None, min_length=1)
    systemd: str | None = Field(default=None, min_length=1)
    expect_status: list[int] = Field(default_factory=list, description="empty: any 2xx or 3xx")
    ca: Path | None = Field(default=None, description="CA file to trust for https")
    verify_tls: bool = True
    timeout: float = Field(default=5.0, gt=0, le=120)
    interval: float | None = Field(default=None, gt=0)

    @field_validator("timeout", "interval", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return None if v is None else _seconds(v)

    @field_validator("expect_status", mode="before")
    @classmethod
    def _statuses(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) else v

    @model_validator(mode="after")
    def _one_kind(self) -> CheckSpec:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (found {found})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)


class ServicesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    heartbeat: float = Field(default=60.0, gt=0)
    interval: float = Field(default=30.0, gt=0)
    services: list[CheckSpec] = Field(default_factory=list)

    @field_validator("heartbeat", "interval", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return _seconds(v)

    @model_validator(mode="after")
    def _unique(self) -> ServicesConfig:
        names = [s.name for s in self.services]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"service names must be unique: {', '.join(dup)}")
        return self

    def interval_of(self, spec: CheckSpec) -> float:
        return spec.interval or self.interval


def load_services(path: Path) -> ServicesConfig:
    """Read services.yaml; ChecksError names the file, the entry and the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ServicesConfig.model_validate(raw)
    except OSError as exc:
        raise ChecksError(f"{path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ChecksError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in e["loc"])
        where = where.replace(".[", "[") or "file"
        raise ChecksError(f"{path}: {where}: {e['msg']}") from None


# --- the checks -----------------------------------------------------------------------------------


def _result(
    spec: CheckSpec, status: HealthStatus, detail: str, started: float | None = None
) -> ServiceCheckResult:
    latency = None if started is None else round((time.perf_counter() - started) * 1000, 2)
    return ServiceCheckResult(
        name=spec.name,
        kind=spec.kind,
        status=status,
        checked_at=datetime.now(UTC),
        latency_ms=latency,
        detail=detail[:2000],
    )


def check_http(spec: CheckSpec) -> ServiceCheckResult:
    import httpx

    from statusdash.tls import client_context

    assert spec.http is not None
    verify: Any = spec.verify_tls
    if spec.http.startswith("https://") and spec.verify_tls:
        verify = client_context(spec.ca)
    started = time.perf_counter()
    try:
        with httpx.Client(verify=verify, timeout=spec.timeout, follow_redirects=False) as c:
            code = c.get(spec.http, headers={"User-Agent": "statusdash-check"}).status_code
    except httpx.HTTPError as exc:
        return _result(spec, HealthStatus.unhealthy, f"{type(exc).__name__}: {exc}", started)
    ok = code in spec.expect_status if spec.expect_status else 200 <= code < 400
    want = ", ".join(map(str, spec.expect_status)) or "2xx/3xx"
    status = HealthStatus.healthy if ok else HealthStatus.unhealthy
    return _result(spec, status, f"HTTP {code}" + ("" if ok else f" (expected {want})"), started)


def check_tcp(spec: CheckSpec) -> ServiceCheckResult:
    assert spec.tcp is not None
    host, _, port = spec.tcp.rpartition(":")
    started = time.perf_counter()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=spec.timeout):
            pass
    except OSError as exc:
        return _result(spec, HealthStatus.unhealthy, f"{spec.tcp}: {exc.strerror or exc}", started)
    return _result(spec, HealthStatus.healthy, f"{spec.tcp} accepts connections", started)


def check_process(spec: CheckSpec) -> ServiceCheckResult:
    import psutil

    target = spec.process
    count = 0
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info.get("cmdline") or []
        if p.info.get("name") == target or (cmd and Path(cmd[0]).name == target):
            count += 1
    if count:
        return _result(spec, HealthStatus.healthy, f"{count} process(es) named {target}")
    return _result(spec, HealthStatus.unhealthy, f"no process named {target}")


def check_systemd(spec: CheckSpec) -> ServiceCheckResult:
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
        return _result(spec, HealthStatus.unknown, "cannot check: systemctl not found")
    except subprocess.TimeoutExpired:
        return _result(
            spec, HealthStatus.unknown, f"cannot check: systemctl took > {spec.timeout}s"
        )
    state = out.stdout.strip() or out.stderr.strip() or "unknown"
    ok = state in HEALTHY_UNIT_STATES
    status = HealthStatus.healthy if ok else HealthStatus.unhealthy
    return _result(spec, status, f"unit {unit} is {state}")


_RUNNERS = {
    "http": check_http,
    "tcp": check_tcp,
    "process": check_process,
    "systemd": check_systemd,
}


def run_check(spec: CheckSpec) -> ServiceCheckResult:
    """One check; never raises (a broken check is reported as unknown)."""
    try:
        return _RUNNERS[spec.kind](spec)
    except Exception as exc:
        return _result(spec, HealthStatus.unknown, f"check failed: {type(exc).__name__}: {exc}")


def run_checks(
    config: ServicesConfig, only: Iterable[str] | None = None
) -> list[ServiceCheckResult]:
    """Run the checks (all, or those named in ``only``) in parallel; results in config order."""
    wanted = None if only is None else set(only)
    specs = [s for s in config.services if wanted is None or s.name in wanted]
    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(specs)), thread_name_prefix="check") as pool:
        return list(pool.map(run_check, specs))


class CheckSchedule:
    """Which checks are due, each on its own interval (monotonic seconds)."""

    def __init__(self, config: ServicesConfig) -> None:
        self.config = config
        self._next: dict[str, float] = {}

    def due(self, now: float) -> list[str]:
        names = [s.name for s in self.config.services if self._next.get(s.name, 0.0) <= now]
        for s in self.config.services:
            if s.name in names:
                self._next[s.name] = now + self.config.interval_of(s)
        return names

    def sleep_for(self, now: float) -> float:
        """Seconds until the next check is due."""
        if not self.config.services:
            return self.config.interval
        return max(0.0, min(self._next.get(s.name, 0.0) for s in self.config.services) - now)


class ChangeTracker:
    """Decides which results become events: a changed status (or error), or a heartbeat due.

    Call ``events`` with fresh results, send them, then ``sent`` once the server took them, so
    a failed POST is retried with the next results.
    """

    def __init__(self, config: ServicesConfig) -> None:
        self.config = config
        self._last: dict[str, tuple[HealthStatus, str, float]] = {}  # status, error, sent at

    def _expected_s(self, name: str) -> float:
        spec = next((s for s in self.config.services if s.name == name), None)
        every = max(self.config.heartbeat, self.config.interval_of(spec) if spec else 0.0)
        return round(every * 2.5, 3)

    def events(self, results: Iterable[ServiceCheckResult], now: float) -> list[dict[str, Any]]:
        out = []
        for r in results:
            last = self._last.get(r.name)
            changed = last is None or last[:2] != (r.status, _error(r))
            if changed or (last is not None and now - last[2] >= self.config.heartbeat):
                out.append(to_event(r, self._expected_s(r.name)))
        return out

    def sent(self, events: Iterable[dict[str, Any]], now: float) -> None:
        for ev in events:
            p = ev["payload"]
            healthy = ev["type"] == "SYSTEM_SERVICE_HEALTHY"
            status = HealthStatus(p["metrics"].get("status", "healthy" if healthy else "unhealthy"))
            self._last[p["serviceName"]] = (status, p.get("errorMessage") or "", now)


def _error(r: ServiceCheckResult) -> str:
    return "" if r.status == HealthStatus.healthy else (r.detail or r.status.value)


def to_event(r: ServiceCheckResult, expected_s: float | None = None) -> dict[str, Any]:
    """The ``POST /api/events`` event for one result (unknown counts as unhealthy)."""
    healthy = r.status == HealthStatus.healthy
    payload: dict[str, Any] = {
        "serviceName": r.name,
        "checkedAt": r.checked_at.isoformat(),
        "metrics": {"kind": r.kind, "status": r.status.value, "latencyMs": r.latency_ms},
    }
    if healthy:
        payload["metrics"]["detail"] = r.detail
    else:
        payload["errorMessage"] = _error(r)
    if expected_s is not None:
        payload["expectedWithinS"] = expected_s
    kind = "SYSTEM_SERVICE_HEALTHY" if healthy else "SYSTEM_SERVICE_UNHEALTHY"
    return {"type": kind, "payload": payload}
