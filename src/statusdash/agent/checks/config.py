"""services.yaml: the service checks the agent runs (HTTP(S), TCP connect, process, systemd unit).

``services.yaml`` lists them (see docs/agent.md); ``statusdash.agent.monitor`` runs each on its
own interval (``statusdash.agent.checks.run``) and sends events on a change or a heartbeat. Plain
dataclasses and dicts, no pydantic: the lean agent daemon runs this for months. PyYAML is imported
by ``load_services`` alone, in the CLI; the daemon gets the parsed checks as JSON
(``ServicesConfig.to_dict``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statusdash import durations
from statusdash.errors import Invalid

KINDS = ("http", "tcp", "process", "systemd")
MIN_INTERVAL_S = 0.1
MAX_TIMEOUT_S = 120.0
_HTTP = re.compile(r"^https?://[^\s/?#]+\S*$")
_TCP = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):(\d{1,5})$")
_SPEC_FIELDS = (*("name", *KINDS), "expect_status", "ca", "verify_tls", "timeout", "interval")


class ChecksError(Invalid):
    """services.yaml cannot be used; the message says where and why."""


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
    try:
        value = durations.parse(v)
    except (TypeError, ValueError) as exc:
        raise ChecksError(f"{where}: {exc}") from None
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
