"""The wire contract: the one definition of a metrics report, as msgspec structs.

Agent, server, CLI and TUI all read and write reports through this module; pydantic appears only
at the HTTP edge of the read API (``schema.py``). It imports neither pydantic nor FastAPI, so the
agent can use it. Compatibility rule (docs/wire-schema.md): unknown fields are ignored, so a
newer agent can add fields without breaking an older server; a ``schema_version`` newer than
ours is refused, because its meaning may differ.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from statusdash import hostid, tagtext
from statusdash.errors import Invalid

SCHEMA_VERSION = 1
MAX_FUTURE = timedelta(minutes=5)

# Body caps, enforced by the server before any JSON is parsed; the agent sends within them.
MAX_REPORT_BYTES = 256 * 1024
MAX_BATCH_BYTES = 4 * 1024 * 1024  # the default of the MAX_BATCH_BYTES setting
# A batch commits in one transaction, and a live report queued behind it waits for it: 500
# reports (agents send 200 by default) keep that wait under ~100 ms where 2,000 took ~270 ms
# (python -m bench.batch_stall). A day of backlog at 10 s is still only 18 requests.
MAX_BATCH_REPORTS = 500
MAX_EVENTS = 256  # health events per POST /api/events
MAX_EVENTS_BYTES = 256 * 1024

# Every number has a bound that storage and the readers can hold (docs/wire-schema.md): integers
# fit a signed 64-bit SQLite INTEGER, and the floats that history stores as scaled integers stay
# within ``server.models.MAX_SCALED`` once scaled (tests/test_wire.py checks both).
MAX_INT64 = 2**63 - 1
MAX_RATE = float(2**47)  # bytes, packets or operations per second: 140 TB/s
MAX_COUNT = 10**7  # processes on one host; a load average cannot exceed the runnable ones
MAX_LATENCY_MS = 86_400_000.0  # one day
Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=MAX_RATE)]
Load = Annotated[float, msgspec.Meta(ge=0, le=MAX_COUNT)]
Celsius = Annotated[float, msgspec.Meta(ge=-273.15, le=1000)]
Bytes = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
# Text from agents is data, stored as received: capped in length, never refused for its
# characters (control characters, escapes, markup, a multi-line stack trace); readers escape it
# where they show it (``safetext``). The events payloads use the same caps.
NAME_LEN = 255
DETAIL_LEN = 4096
SHORT_LEN = 64
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_LEN)]
Text = Annotated[str, msgspec.Meta(max_length=NAME_LEN)]
ShortText = Annotated[str, msgspec.Meta(max_length=SHORT_LEN)]
Detail = Annotated[str, msgspec.Meta(max_length=DETAIL_LEN)]
# msgspec searches with Python's re, where ``$`` also matches before a final newline: ``\Z`` does
# not, so ``"web-1\n"`` is refused, as ``hostid.is_valid`` refuses it.
_HOST_PATTERN = hostid.PATTERN.removesuffix("$") + r"\Z"
HostId = Annotated[str, msgspec.Meta(pattern=_HOST_PATTERN, max_length=hostid.MAX_LEN)]
Time = Annotated[datetime, msgspec.Meta(tz=True)]  # a time without a UTC offset is refused
# Host tags an agent declares (``agent run --tag role=db``); the server's own tags win (tagtext).
TagKey = Annotated[str, msgspec.Meta(pattern=tagtext.KEY_PATTERN, max_length=tagtext.KEY_LEN)]
TagValue = Annotated[str, msgspec.Meta(min_length=1, max_length=tagtext.VALUE_LEN)]


class _Wire(msgspec.Struct):
    """Base of every wire struct (each keyword-only); unknown fields are ignored by default."""


class SystemInfo(_Wire, kw_only=True):
    hostname: Name
    os: Text = ""  # pretty OS name, e.g. Debian 12
    kernel: Text = ""
    arch: ShortText = ""
    boot_time: Time | None = None
    cpu_count: Annotated[int, msgspec.Meta(ge=1, le=65536)] = 1


class AgentInfo(_Wire, kw_only=True):
    """The agent itself: its version, what waits in its spool, when its certificate ends."""

    version: ShortText
    spool_backlog: Count = 0
    cert_not_after: Time | None = None


class CpuStats(_Wire, kw_only=True):
    percent: Percent  # total CPU busy
    per_core: Annotated[list[Percent], msgspec.Meta(max_length=4096)] = []
    iowait: Percent | None = None  # % of time waiting on IO (Linux)
    steal: Percent | None = None  # % stolen by the hypervisor


class LoadAvg(_Wire, kw_only=True):
    """Load averages; on the wire the keys are ``1m``, ``5m`` and ``15m``."""

    m1: Load = msgspec.field(name="1m")
    m5: Load = msgspec.field(name="5m")
    m15: Load = msgspec.field(name="15m")


class Memory(_Wire, kw_only=True):
    percent: Percent
    total: Bytes
    used: Bytes
    available: Bytes


class Swap(_Wire, kw_only=True):
    percent: Percent
    total: Bytes
    used: Bytes


class Disk(_Wire, kw_only=True):
    mount: Name
    fstype: ShortText = ""
    device: Text = ""
    total: Bytes
    used: Bytes
    percent: Percent


class DiskIORate(_Wire, kw_only=True):
    read_bytes_s: Rate = 0.0
    write_bytes_s: Rate = 0.0
    read_ops_s: Rate = 0.0
    write_ops_s: Rate = 0.0
    busy_percent: Percent | None = None  # % of the time the device was busy (io_time delta)


class DiskIO(_Wire, kw_only=True):
    """Rates per second, summed over devices; ``None`` on the agent's first sample."""

    read_bytes_s: Rate | None = None
    write_bytes_s: Rate | None = None
    devices: Annotated[dict[Text, DiskIORate], msgspec.Meta(max_length=1024)] = {}


class NetRate(_Wire, kw_only=True):
    rx_bytes_s: Rate = 0.0
    tx_bytes_s: Rate = 0.0
    rx_packets_s: Rate = 0.0
    tx_packets_s: Rate = 0.0
    errors_s: Rate = 0.0
    drops_s: Rate = 0.0


class Net(_Wire, kw_only=True):
    """Rates per second, summed over interfaces but loopback; ``None`` on the first sample."""

    rx_bytes_s: Rate | None = None
    tx_bytes_s: Rate | None = None
    interfaces: Annotated[dict[Text, NetRate], msgspec.Meta(max_length=1024)] = {}


class Temperature(_Wire, kw_only=True):
    sensor: Name
    label: Text = ""
    current: Celsius
    high: Celsius | None = None
    critical: Celsius | None = None


class ProcessInfo(_Wire, kw_only=True):
    pid: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    name: Text
    user: Text = ""
    cpu_percent: Annotated[float, msgspec.Meta(ge=0, le=100 * 65536)]  # % of one core, per core
    memory_percent: Percent
    rss: Bytes = 0
    # first 8 hex chars of sha256 of the executable's path (never the command line); "" unknown
    exe_hash: ShortText = ""


class Processes(_Wire, kw_only=True):
    count: Count
    top_cpu: Annotated[list[ProcessInfo], msgspec.Meta(max_length=50)] = []
    top_memory: Annotated[list[ProcessInfo], msgspec.Meta(max_length=50)] = []


class Gpu(_Wire, kw_only=True):
    """One GPU (issue 13): NVIDIA through NVML, AMD through sysfs; unknown readings ``None``."""

    id: ShortText  # the label value: "0" (NVML index), "card1" (DRM card)
    vendor: ShortText = ""  # nvidia, amd
    model: Text = ""
    percent: Percent | None = None
    memory_percent: Percent | None = None
    temp_celsius: Celsius | None = None
    power_watts: Annotated[float, msgspec.Meta(ge=0, le=100_000)] | None = None


class Container(_Wire, kw_only=True):
    """One container or systemd service, from its cgroup v2 (issue 13)."""

    name: Name  # the label value
    kind: ShortText = ""  # docker, podman, systemd, cgroup
    cpu_percent: Annotated[float, msgspec.Meta(ge=0, le=100 * 65536)] | None = None  # of a core
    memory_bytes: Bytes | None = None


class HealthStatus(StrEnum):
    healthy = "healthy"
    unhealthy = "unhealthy"
    unknown = "unknown"


class ServiceCheckResult(_Wire, kw_only=True):
    """The result of one of the host's service checks (services.yaml)."""

    name: Name
    kind: ShortText = ""  # http, tcp, process or systemd
    status: HealthStatus
    checked_at: Time
    latency_ms: Annotated[float, msgspec.Meta(ge=0, le=MAX_LATENCY_MS)] | None = None
    detail: Detail = ""


class MetricsReport(_Wire, kw_only=True):
    """One collection cycle of one host."""

    schema_version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    report_id: uuid.UUID
    host: HostId
    collected_at: Time
    interval_s: Annotated[float, msgspec.Meta(gt=0, le=86400)]
    system: SystemInfo | None = None
    agent: AgentInfo | None = None
    cpu: CpuStats | None = None
    load: LoadAvg | None = None
    memory: Memory | None = None
    swap: Swap | None = None
    disks: Annotated[list[Disk], msgspec.Meta(max_length=512)] = []
    disk_io: DiskIO | None = None
    net: Net | None = None
    temps: Annotated[list[Temperature], msgspec.Meta(max_length=512)] = []
    gpus: Annotated[list[Gpu], msgspec.Meta(max_length=64)] = []
    containers: Annotated[list[Container], msgspec.Meta(max_length=512)] = []
    processes: Processes | None = None
    services: Annotated[list[ServiceCheckResult], msgspec.Meta(max_length=512)] = []
    tags: Annotated[dict[TagKey, TagValue], msgspec.Meta(max_length=tagtext.MAX_TAGS)] = {}

    @property
    def worst_disk(self) -> Disk | None:
        """The fullest filesystem."""
        return worst_disk(self.disks)


class MetricsBatch(_Wire, kw_only=True):
    reports: Annotated[
        list[MetricsReport], msgspec.Meta(min_length=1, max_length=MAX_BATCH_REPORTS)
    ]


def worst_disk(disks: list[Disk]) -> Disk | None:
    """The fullest filesystem."""
    return max(disks, key=lambda d: d.percent, default=None)


class WireError(Invalid):
    """A body that is not a valid report or batch: which field, which report, and why."""

    def __init__(
        self, path: str, problem: str, *, index: int | None = None, malformed: bool = False
    ) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path  # dotted, list indexes as parts: ``reports.3.cpu.percent``
        self.problem = problem
        self.index = index  # the batch index of the first bad report
        self.malformed = malformed  # not JSON at all (rather than JSON that breaks the contract)


# msgspec names a bad dict key as "... - at `key` in `$.tags`": the path is the dict's.
_AT = re.compile(r"^(?P<problem>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")
_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[([^\]]*)\]")
_BATCH_INDEX = re.compile(r"^reports\.(\d+)(?:\.|$)")


def _dotted(path: str) -> str:
    """msgspec's ``.reports[3].cpu.percent`` as ``reports.3.cpu.percent``.

    msgspec does not name the key of a dict entry (``[...]``): it is written ``*``.
    """
    parts = (next(p for p in m.groups() if p is not None) for m in _PART.finditer(path))
    return ".".join("*" if p == "..." else p for p in parts)


def _error(exc: msgspec.ValidationError) -> WireError:
    m = _AT.match(str(exc))
    assert m is not None  # the pattern matches any text
    problem, path = m.group("problem"), _dotted(m.group("path") or "")
    if m.group("key"):
        problem = f"a key: {problem}"
    missing = _MISSING.search(problem)
    if missing:
        path = f"{path}.{missing.group('name')}" if path else missing.group("name")
    index = _BATCH_INDEX.match(path)
    return WireError(path, problem, index=int(index.group(1)) if index else None)


def _check(r: MetricsReport, now: datetime, max_age: timedelta | None, prefix: str) -> None:
    """The rules no type states: a known version, and collected_at within the window."""
    if r.schema_version > SCHEMA_VERSION:
        raise WireError(
            f"{prefix}schema_version",
            f"schema_version {r.schema_version} is newer than this server understands",
        )
    if r.collected_at.utcoffset():  # kept in UTC, as stored and answered
        r.collected_at = r.collected_at.astimezone(UTC)
    if r.collected_at > now + MAX_FUTURE:
        problem = "is more than 5 minutes in the future; check the agent's clock"
        raise WireError(f"{prefix}collected_at", problem)
    if max_age is not None and r.collected_at < now - max_age:
        problem = f"is older than the retention horizon ({max_age.days} days)"
        raise WireError(f"{prefix}collected_at", problem)


def _undecodable(body: bytes | str, exc: msgspec.DecodeError, kind: type[Any]) -> WireError:
    """Malformed JSON, unless it is only a ``NaN``/``Infinity`` literal: then the field named.

    Python's parser takes those literals and msgspec's does not; a careless agent sends them,
    and it deserves to learn which field, as for any other value out of bounds.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return WireError("", f"malformed JSON: {exc}", malformed=True)
    try:
        msgspec.convert(data, kind)
    except msgspec.ValidationError as invalid:
        return _error(invalid)
    return WireError("", "a number is not finite (NaN or Infinity)")


def _too_deep() -> WireError:
    """JSON nested past the parser's recursion limit (a report is four levels deep)."""
    return WireError("", "malformed JSON: nested too deeply", malformed=True)


_REPORT = msgspec.json.Decoder(MetricsReport)
_ENCODER = msgspec.json.Encoder()


def decode_report(body: bytes | str, *, now: datetime, max_age: timedelta | None) -> MetricsReport:
    """One report from JSON, or ``WireError``; ``max_age`` None: no retention horizon."""
    try:
        r = _REPORT.decode(body)
    except msgspec.ValidationError as exc:
        raise _error(exc) from None
    except msgspec.DecodeError as exc:
        raise _undecodable(body, exc, MetricsReport) from None
    except RecursionError:
        raise _too_deep() from None
    _check(r, now, max_age, "")
    return r


class _RawBatch(_Wire, kw_only=True):
    """A batch split into its reports' JSON, each left undecoded (a scan that builds nothing)."""

    reports: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_BATCH_REPORTS)]


_SPLIT = msgspec.json.Decoder(_RawBatch)
_CHUNK = msgspec.json.Decoder(list[MetricsReport])
DECODE_CHUNK = 50  # reports per decode call of a batch: ~85 KB, a millisecond or two of work
_CHUNK_INDEX = re.compile(r"^(\d+)(?:\.|$)")


def batch_chunks(
    body: bytes | str, *, now: datetime, max_age: timedelta | None, size: int = DECODE_CHUNK
) -> Iterator[list[MetricsReport]]:
    """A batch's reports, oldest first, ``size`` at a time; ``WireError`` names the first bad one.

    The body is split once into its reports' JSON (a scan that builds nothing); each chunk is
    then decoded in one call. msgspec holds the GIL while it decodes, so a server that awaits
    between chunks lets other requests run: a 500-report batch never blocks the loop for the
    whole of its decode. An error names the field as ``reports.<index>.<path>`` and its index.
    """
    try:
        raws = _SPLIT.decode(body).reports
    except msgspec.ValidationError as exc:
        raise _error(exc) from None
    except msgspec.DecodeError as exc:
        raise _undecodable(body, exc, MetricsBatch) from None
    except RecursionError:
        raise _too_deep() from None
    for first in range(0, len(raws), size):
        part = raws[first : first + size]
        try:
            reports = _CHUNK.decode(b"[" + b",".join(part) + b"]")
        except msgspec.ValidationError as exc:
            inner = _error(exc)
            m = _CHUNK_INDEX.match(inner.path)
            assert m is not None  # a list of reports: every path starts with the index
            i = first + int(m.group(1))
            rest = inner.path[m.end() :]
            path = f"reports.{i}.{rest}" if rest else f"reports.{i}"
            raise WireError(path, inner.problem, index=i) from None
        except (msgspec.DecodeError, RecursionError):  # each part was valid JSON in the split
            raise _too_deep() from None
        for k, r in enumerate(reports):
            try:
                _check(r, now, max_age, f"reports.{first + k}.")
            except WireError as exc:
                exc.index = first + k
                raise
        yield reports


def decode_batch(
    body: bytes | str, *, now: datetime, max_age: timedelta | None
) -> list[MetricsReport]:
    """The reports of a batch from JSON, oldest first, or ``WireError`` naming the first bad one."""
    return [r for chunk in batch_chunks(body, now=now, max_age=max_age) for r in chunk]


def convert(data: Any) -> MetricsReport:
    """A report from already-parsed data (a dict, as the agent builds it), or ``WireError``."""
    try:
        return msgspec.convert(data, MetricsReport)
    except msgspec.ValidationError as exc:
        raise _error(exc) from None


def encode(report: MetricsReport) -> bytes:
    """A report as the wire's JSON."""
    return _ENCODER.encode(report)


def to_builtins(report: MetricsReport) -> dict[str, Any]:
    """A report as JSON-ready builtins (the wire's keys, times as ISO-8601 text)."""
    out: dict[str, Any] = msgspec.to_builtins(report)
    return out
