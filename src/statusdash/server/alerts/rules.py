"""Alert rules: built-in defaults from the thresholds, overridden per host and mount by a file.

A rule fires when its value reaches ``threshold`` and stays at or above ``clear`` for ``for``;
it resolves only once the value falls below ``clear``. The gap between the two is what keeps a
value hovering at the threshold from raising a storm of alerts.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from statusdash import durations, tagtext
from statusdash.errors import Invalid

RULE_NAMES = ("cpu", "memory", "disk", "offline", "service")
EVENT_RULE = "event"  # alerts raised by SYSTEM_ALERT_TRIGGERED events
DEFAULT_FOR_S = 60.0
DEFAULT_GAP = 5.0  # clear = threshold - gap for the percentage rules
OFFLINE_INTERVALS = 5.0  # missed intervals before a host is offline (the cache's "down")
Severity = Literal["info", "warning", "critical"]


class RulesError(Invalid):
    """The rules file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class RuleSpec:
    """The effective parameters of one rule for one host and subject."""

    enabled: bool
    threshold: float
    clear: float
    for_s: float
    severity: str
    public: bool = False  # shown as an incident on the public status page (docs/status-page.md)
    tags: tuple[tuple[str, str], ...] = ()  # judged only on hosts whose effective tags match


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    enabled: bool | None = None
    threshold: float | None = Field(default=None, ge=0)
    clear: float | None = Field(default=None, ge=0)
    for_s: float | None = Field(default=None, alias="for")
    severity: Severity | None = None
    public: bool | None = None
    tags: dict[str, str] | None = Field(default=None, description="host tags to match, k = v")

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return None if v is None else tagtext.check_tags(v)

    @field_validator("for_s", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        return None if v is None else durations.parse(v)


class _Override(_Params):
    host: str = Field(default="*", min_length=1, description="host id or glob")
    rule: Literal["cpu", "memory", "disk", "offline", "service"]
    subject: str | None = Field(default=None, description="mount or service name, glob")
    mount: str | None = None
    service: str | None = None

    @property
    def subject_glob(self) -> str | None:
        return self.subject or self.mount or self.service


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: dict[Literal["cpu", "memory", "disk", "offline", "service"], _Params] = Field(
        default_factory=dict
    )
    overrides: list[_Override] = Field(default_factory=list)


def _apply(base: RuleSpec, p: _Params) -> RuleSpec:
    threshold = base.threshold if p.threshold is None else p.threshold
    # A new threshold alone keeps the width of the hysteresis band.
    gap = base.threshold - base.clear
    clear = p.clear if p.clear is not None else max(0.0, threshold - gap)
    return RuleSpec(
        enabled=base.enabled if p.enabled is None else p.enabled,
        threshold=threshold,
        clear=clear,
        for_s=base.for_s if p.for_s is None else p.for_s,
        severity=base.severity if p.severity is None else p.severity,
        public=base.public if p.public is None else p.public,
        tags=base.tags if p.tags is None else tuple(sorted(p.tags.items())),
    )


def default_rules(cpu: float = 90, memory: float = 85, disk: float = 90) -> dict[str, RuleSpec]:
    """The built-in rules, from CPU_THRESHOLD, MEMORY_THRESHOLD and DISK_THRESHOLD."""

    def pct(t: float) -> RuleSpec:
        return RuleSpec(True, t, max(0.0, t - DEFAULT_GAP), DEFAULT_FOR_S, "warning")

    return {
        "cpu": pct(cpu),
        "memory": pct(memory),
        "disk": pct(disk),
        "offline": RuleSpec(True, OFFLINE_INTERVALS, OFFLINE_INTERVALS, 0.0, "critical"),
        "service": RuleSpec(True, 1.0, 1.0, 0.0, "critical"),
    }


class RuleSet:
    """Base rules plus ordered overrides; ``spec`` resolves (and caches) one host and subject."""

    def __init__(
        self,
        base: dict[str, RuleSpec],
        overrides: list[_Override] | None = None,
        source: Path | None = None,
        from_file: frozenset[str] = frozenset(),
    ) -> None:
        self.base = base
        self.overrides = overrides or []
        self.source = source
        self.from_file = from_file  # the base rules the file's ``rules`` section changed
        self._cache: dict[tuple[str, str, str], RuleSpec] = {}

    def spec(self, rule: str, host: str, subject: str = "") -> RuleSpec:
        key = (rule, host, subject)
        found = self._cache.get(key)
        if found is None:
            found = self.base[rule]
            for o in self.overrides:
                glob = o.subject_glob
                if o.rule != rule or not fnmatchcase(host, o.host):
                    continue
                if glob is not None and not fnmatchcase(subject, glob):
                    continue
                found = _apply(found, o)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = found
        return found

    def explain(
        self, rule: str, host: str, subject: str = "", for_host: list[int] | None = None
    ) -> dict[str, Any]:
        """``spec`` as JSON, with where it came from: ``default``, ``file`` or ``override``.

        ``overrides`` lists the indexes of the overrides that changed it, in the order applied;
        ``for_host`` (the indexes whose host glob matches ``host``) saves matching it again.
        """
        overrides = self.overrides
        if for_host is None:
            for_host = [i for i, o in enumerate(overrides) if fnmatchcase(host, o.host)]
        applied = []
        for i in for_host:
            o = overrides[i]
            glob = o.subject_glob
            if o.rule == rule and (glob is None or fnmatchcase(subject, glob)):
                applied.append(i)
        origin = "override" if applied else ("file" if rule in self.from_file else "default")
        return _as_json(self.spec(rule, host, subject), origin, applied)

    def in_force(self, hosts: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
        """The rules as ``GET /api/alerts/rules`` answers: globally, then for each host in
        ``hosts`` (``{host: (mounts, services)}``) its host rules, mounts and services."""
        per_host: dict[str, Any] = {}
        for host, (mounts, services) in sorted(hosts.items()):
            mine = [i for i, o in enumerate(self.overrides) if fnmatchcase(host, o.host)]
            per_host[host] = {
                "rules": {r: self.explain(r, host, "", mine) for r in ("cpu", "memory", "offline")},
                "disks": {m: self.explain("disk", host, m, mine) for m in sorted(mounts)},
                "services": {c: self.explain("service", host, c, mine) for c in sorted(services)},
            }
        base = {
            name: _as_json(spec, "file" if name in self.from_file else "default", [])
            for name, spec in self.base.items()
        }
        return {**self.describe(), "rules": base, "hosts": per_host}

    def describe(self) -> dict[str, Any]:
        """The effective rules as JSON: file, base rules and overrides."""
        return {
            "file": str(self.source) if self.source else None,
            "rules": {
                name: {**asdict(spec), "tags": dict(spec.tags)} for name, spec in self.base.items()
            },
            "overrides": [o.model_dump(exclude_none=True, by_alias=True) for o in self.overrides],
        }


def _as_json(spec: RuleSpec, source: str, overrides: list[int]) -> dict[str, Any]:
    return {
        "enabled": spec.enabled,
        "threshold": spec.threshold,
        "clear": spec.clear,
        "for_s": spec.for_s,
        "severity": spec.severity,
        "tags": dict(spec.tags),
        "source": source,
        "overrides": overrides,
    }


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".toml":
        return tomllib.loads(text)
    if suffix in (".yaml", ".yml"):
        return yaml.safe_load(text) or {}
    raise RulesError(f"rules file {path}: unknown format {suffix!r}; use .toml, .yaml or .yml")


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "file"


def load_rules(path: Path | None, base: dict[str, RuleSpec]) -> RuleSet:
    """The rule set from ``base`` and the file at ``path``; RulesError says what is wrong."""
    if path is None:
        return RuleSet(dict(base))
    try:
        raw = _read(path)
        parsed = _RulesFile.model_validate(raw)
    except RulesError:
        raise
    except OSError as exc:
        raise RulesError(f"rules file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise RulesError(f"rules file {path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise RulesError(
            f"rules file {path}: {_where(tuple(e['loc']))}: {e['msg']}{more}"
        ) from None
    rules = dict(base)
    for name, params in parsed.rules.items():
        rules[name] = _apply(base[name], params)
    for rule_name, spec in rules.items():
        if spec.clear > spec.threshold:
            raise RulesError(
                f"rules file {path}: rules.{rule_name}: clear ({spec.clear:g}) is above"
                f" threshold ({spec.threshold:g}); it must be at or below it"
            )
    for i, o in enumerate(parsed.overrides):
        spec = _apply(rules[o.rule], o)
        if spec.clear > spec.threshold:
            raise RulesError(
                f"rules file {path}: overrides[{i}]: clear ({spec.clear:g}) is above"
                f" threshold ({spec.threshold:g})"
            )
    return RuleSet(rules, parsed.overrides, path, frozenset(parsed.rules))
