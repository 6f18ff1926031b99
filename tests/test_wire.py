"""Property tests of the wire contract: every bound of every field, read from the structs."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statusdash import wire
from statusdash.errors import Invalid
from tests.conftest import make_report

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AGE = timedelta(days=30)


def rich_report() -> dict[str, Any]:
    """A report with every section filled, as a real agent sends it."""
    r = make_report("web-1", at=NOW - timedelta(seconds=30))
    r["agent"] = {
        "version": "0.1.0",
        "spool_backlog": 3,
        "cert_not_after": (NOW + timedelta(days=30)).isoformat(),
    }
    r["temps"] = [
        {"sensor": "coretemp", "label": "Core 0", "current": 48.0, "high": 80.0, "critical": 99.0}
    ]
    r["disk_io"]["devices"] = {
        "sda": {
            "read_bytes_s": 10.0,
            "write_bytes_s": 5.5,
            "read_ops_s": 1.0,
            "write_ops_s": 2.0,
            "busy_percent": 12.5,
        }
    }
    r["net"]["interfaces"] = {
        "eth0": {
            "rx_bytes_s": 1.0,
            "tx_bytes_s": 2.0,
            "rx_packets_s": 3.0,
            "tx_packets_s": 4.0,
            "errors_s": 0.0,
            "drops_s": 0.0,
        }
    }
    proc = {
        "pid": 1,
        "name": "init",
        "user": "root",
        "cpu_percent": 0.5,
        "memory_percent": 0.1,
        "rss": 4096,
        "exe_hash": "0a1b2c3d",
    }
    r["processes"]["top_cpu"] = [proc]
    r["processes"]["top_memory"] = [dict(proc)]
    r["services"] = [
        {
            "name": "nginx",
            "kind": "http",
            "status": "healthy",
            "checked_at": NOW.isoformat(),
            "latency_ms": 1.5,
            "detail": "200 OK",
        }
    ]
    r["disks"][0]["device"] = "/dev/sda1"
    r["gpus"] = [
        {
            "id": "0",
            "vendor": "nvidia",
            "model": "NVIDIA T4",
            "percent": 40.0,
            "memory_percent": 20.0,
            "temp_celsius": 55.0,
            "power_watts": 31.5,
        }
    ]
    r["containers"] = [
        {"name": "web", "kind": "docker", "cpu_percent": 12.0, "memory_bytes": 1048576}
    ]
    return r


BASE = rich_report()


def _leaves(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*prefix, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*prefix, i))]
    return [prefix]


def _type_at(path: tuple[Any, ...]) -> mi.Type:
    t: mi.Type = mi.type_info(wire.MetricsReport)
    for key in path:
        if isinstance(t, mi.UnionType):
            (t,) = [m for m in t.types if not isinstance(m, mi.NoneType)]
        if isinstance(t, mi.StructType):
            t = next(f.type for f in t.fields if f.encode_name == key)
        elif isinstance(t, mi.ListType):
            t = t.item_type
        elif isinstance(t, mi.DictType):
            t = t.value_type
    if isinstance(t, mi.UnionType):
        (t,) = [m for m in t.types if not isinstance(m, mi.NoneType)]
    return t


# (path, bound kind, bound): every constraint a leaf of the full report has.
BOUNDS: list[tuple[tuple[Any, ...], str, Any]] = []
FLOATS: list[tuple[Any, ...]] = []
for _path in _leaves(BASE):
    _t = _type_at(_path)
    if isinstance(_t, mi.FloatType | mi.IntType):
        if isinstance(_t, mi.FloatType):
            FLOATS.append(_path)
        for _kind in ("ge", "gt", "le"):
            _b = getattr(_t, _kind)
            if _b is not None and abs(_b) != sys.float_info.max:
                BOUNDS.append((_path, _kind, _b))
    elif isinstance(_t, mi.StrType):
        if _t.max_length is not None:
            BOUNDS.append((_path, "max_length", _t.max_length))
        if _t.min_length:
            BOUNDS.append((_path, "min_length", _t.min_length))
BASE_VALUE: dict[tuple[Any, ...], Any] = {}
for _path in _leaves(BASE):
    _node: Any = BASE
    for _key in _path:
        _node = _node[_key]
    BASE_VALUE[_path] = _node
assert len(BOUNDS) > 60 and len(FLOATS) > 30  # the walk found the whole report


def with_value(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(json.dumps(BASE))
    node: Any = report
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return report


def dotted(path: tuple[Any, ...]) -> str:
    """The path a WireError names: dict keys (interfaces, devices) are ``*``."""
    return ".".join(str(p) for p in path).replace(".eth0.", ".*.").replace(".sda.", ".*.")


def decode(report: dict[str, Any]) -> wire.MetricsReport:
    return wire.decode_report(json.dumps(report), now=NOW, max_age=AGE)


@settings(max_examples=800, deadline=None)
@given(bound=st.sampled_from(BOUNDS), delta=st.floats(min_value=1e-6, max_value=1e9))
def test_every_field_past_each_bound_is_refused_with_its_path(
    bound: tuple[tuple[Any, ...], str, Any], delta: float
) -> None:
    path, kind, limit = bound
    if kind == "max_length":
        value: Any = "x" * (limit + 1 + int(delta) % 50)
    elif kind == "min_length":
        value = ""
    elif isinstance(limit, int) and isinstance(BASE_VALUE[path], int):
        value = limit + (1 + int(delta)) * (1 if kind == "le" else -1)
    else:
        step = max(delta, 2 * math.ulp(limit))  # past a large bound by at least its precision
        value = limit + step if kind == "le" else limit - step
        value = limit if kind == "gt" and delta > 1e8 else value  # gt: the bound itself too
    batch = json.dumps({"reports": [BASE, with_value(path, value)]})
    with pytest.raises(wire.WireError) as err:
        wire.decode_batch(batch, now=NOW, max_age=AGE)
    assert err.value.path == f"reports.1.{dotted(path)}"
    assert err.value.index == 1
    with pytest.raises(wire.WireError) as one:
        decode(with_value(path, value))
    assert one.value.path == dotted(path) and one.value.index is None
    assert str(one.value).startswith(f"{dotted(path)}: ")


@settings(max_examples=400, deadline=None)
@given(bound=st.sampled_from(BOUNDS), frac=st.floats(min_value=0, max_value=1))
def test_values_within_the_bounds_are_accepted_and_round_trip(
    bound: tuple[tuple[Any, ...], str, Any], frac: float
) -> None:
    path, kind, limit = bound
    base = BASE_VALUE[path]
    if kind in ("max_length", "min_length"):
        if path == ("host",):
            return  # the pattern decides; see test_host_ids_follow_the_pattern
        value: Any = "y" * max(1, round(frac * limit)) if kind == "max_length" else "y"
    elif path == ("schema_version",):
        value = wire.SCHEMA_VERSION  # newer ones are refused: test_rules_beyond_the_bounds
    elif isinstance(base, int) and not isinstance(base, bool):
        value = limit + round(frac * 1000) * (-1 if kind == "le" else 1)
    else:
        value = limit - frac * 50 if kind == "le" else limit + frac * 50 + (kind == "gt") * 1e-3
    report = decode(with_value(path, value))
    again = wire.decode_report(wire.encode(report), now=NOW, max_age=AGE)
    assert again == report
    node: Any = json.loads(wire.encode(again))
    for key in path:
        node = node[key]
    assert node == value


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(FLOATS), sign=st.sampled_from(["", "-"]))
def test_json_infinity_is_refused_on_every_float(path: tuple[Any, ...], sign: str) -> None:
    text = json.dumps(with_value(path, 12345.678)).replace("12345.678", f"{sign}1e400")
    with pytest.raises(wire.WireError) as err:
        wire.decode_report(text, now=NOW, max_age=AGE)
    assert err.value.path == dotted(path)


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(FLOATS), literal=st.sampled_from(["NaN", "Infinity", "-Infinity"]))
def test_nan_and_infinity_literals_are_refused_with_the_field(
    path: tuple[Any, ...], literal: str
) -> None:
    text = json.dumps({"reports": [with_value(path, 12345.678)]})
    with pytest.raises(wire.WireError) as err:
        wire.decode_batch(text.replace("12345.678", literal), now=NOW, max_age=AGE)
    assert err.value.path == f"reports.0.{dotted(path)}" and not err.value.malformed


@settings(max_examples=300, deadline=None)
@given(host=st.text(alphabet=st.characters(codec="ascii"), min_size=0, max_size=70))
def test_host_ids_follow_the_pattern(host: str) -> None:
    from statusdash import hostid

    if hostid.is_valid(host):
        assert decode(with_value(("host",), host)).host == host
    else:
        with pytest.raises(wire.WireError, match=r"^host: "):
            decode(with_value(("host",), host))


@settings(max_examples=100, deadline=None)
@given(offset=st.integers(min_value=-40 * 86400, max_value=3600))
def test_collected_at_window(offset: int) -> None:
    at = (NOW + timedelta(seconds=offset)).isoformat()
    batch = json.dumps({"reports": [BASE, with_value(("collected_at",), at)]})
    if -30 * 86400 <= offset <= 300:
        assert wire.decode_batch(batch, now=NOW, max_age=AGE)[1].collected_at == NOW + timedelta(
            seconds=offset
        )
    else:
        with pytest.raises(wire.WireError) as err:
            wire.decode_batch(batch, now=NOW, max_age=AGE)
        assert err.value.path == "reports.1.collected_at" and err.value.index == 1


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("collected_at",), "2026-11-27T11:00:00", "timezone"),
        (("services", 0, "checked_at"), "2026-11-27T11:00:00", "timezone"),
        (("schema_version",), 2, "newer than this server understands"),
        (("schema_version",), 0, ">= 1"),
        (("report_id",), "not-a-uuid", "uuid"),
        (("interval_s",), "ten", "float"),
        (("services", 0, "status"), "fine", "invalid enum value"),
        (("cpu",), None, ""),  # a section may be absent
    ],
)
def test_rules_beyond_the_bounds(path: tuple[Any, ...], value: Any, problem: str) -> None:
    if not problem:
        assert decode(with_value(path, value)).cpu is None
        return
    with pytest.raises(wire.WireError) as err:
        decode(with_value(path, value))
    assert err.value.path == dotted(path) and problem in err.value.problem.lower()
    assert isinstance(err.value, Invalid)


def test_a_missing_field_is_named() -> None:
    report = json.loads(json.dumps(BASE))
    del report["memory"]["total"]
    with pytest.raises(wire.WireError) as err:
        decode(report)
    assert err.value.path == "memory.total"


def test_collected_at_is_kept_in_utc() -> None:
    at = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    r = decode(with_value(("collected_at",), at))
    assert r.collected_at == NOW - timedelta(hours=1) and r.collected_at.utcoffset() == timedelta(0)


def test_unknown_fields_are_ignored() -> None:
    report = json.loads(json.dumps(BASE))
    report["gpu"] = {"percent": 3}
    report["cpu"]["future"] = 1
    assert decode(report) == decode(BASE)


@pytest.mark.parametrize(
    ("body", "malformed"), [(b"", True), (b"{not json", True), (b"[1, 2]", False)]
)
def test_bodies_that_are_not_a_report(body: bytes, malformed: bool) -> None:
    with pytest.raises(wire.WireError) as err:
        wire.decode_report(body, now=NOW, max_age=AGE)
    assert err.value.malformed is malformed and err.value.path == ""


def test_batch_size_bounds() -> None:
    with pytest.raises(wire.WireError, match=r"^reports: "):
        wire.decode_batch(b'{"reports": []}', now=NOW, max_age=AGE)
    many = msgspec.json.encode({"reports": [BASE] * (wire.MAX_BATCH_REPORTS + 1)})
    with pytest.raises(wire.WireError, match=r"^reports: "):
        wire.decode_batch(many, now=NOW, max_age=AGE)


def test_convert_and_builtins_agree_with_the_json_path() -> None:
    r = decode(BASE)
    assert wire.convert(BASE) == wire.convert(wire.to_builtins(r)) == r
    assert r.worst_disk is not None and r.worst_disk.mount == "/"
    assert wire.to_builtins(r)["load"] == {"1m": 0.42, "5m": 0.3, "15m": 0.2}


def test_every_number_has_a_bound_storage_can_hold() -> None:
    """Each integer fits a signed 64-bit SQLite INTEGER; each float has a finite upper bound."""
    for path in _leaves(BASE):
        t = _type_at(path)
        if isinstance(t, mi.IntType):
            assert t.le is not None and t.le <= wire.MAX_INT64, path
        elif isinstance(t, mi.FloatType):
            assert t.le is not None and t.le < sys.float_info.max, path


def _at_upper_bounds() -> dict[str, Any]:
    report: dict[str, Any] = json.loads(json.dumps(BASE))
    for path in _leaves(BASE):
        t = _type_at(path)
        if isinstance(t, mi.IntType | mi.FloatType) and path != ("schema_version",):
            node: Any = report
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = t.le
    return report


def test_stored_series_at_the_wire_bounds_fit_the_scaled_columns() -> None:
    """Every catalogue series, at its field's upper bound, scales within ``MAX_SCALED``."""
    from statusdash import catalog
    from statusdash.server.models import MAX_SCALED

    r = decode(_at_upper_bounds())
    assert r.processes is not None and r.processes.count == wire.MAX_COUNT
    assert r.memory is not None and r.memory.total == wire.MAX_INT64
    for metric, value in zip(catalog.METRICS, catalog.values(r), strict=True):
        assert value is not None, metric.name
        assert value * metric.scale <= MAX_SCALED, metric.name


HOSTILE = (
    "\x1b]0;pwned\x07\x1b]52;c;ZWNobyBoaQ==\x07\x1b[2J\x1b[H\x00\x07\x08\r"
    "\u202e\u2066gnp.exe\u2069[/x][link=https://evil.example]click[/link][bold red]"
)


def test_hostile_text_is_data_stored_as_received() -> None:
    """Escapes, NUL, bidi overrides, Rich markup and newlines are accepted and kept exactly."""
    report = json.loads(json.dumps(BASE))
    report["system"]["os"] = HOSTILE[:255]
    report["processes"]["top_cpu"][0]["name"] = HOSTILE
    report["services"][0]["detail"] = ("Traceback (most recent call last):\n  " + HOSTILE) * 20
    report["disks"][0]["mount"] = HOSTILE
    r = decode(report)
    assert r.system is not None and r.system.os == HOSTILE[:255]
    assert r.processes is not None and r.processes.top_cpu[0].name == HOSTILE
    assert r.services[0].detail == report["services"][0]["detail"]
    assert decode(json.loads(wire.encode(r))) == r


@pytest.mark.parametrize("where", ["report", "batch"])
def test_deeply_nested_json_is_malformed_not_a_crash(where: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = json.dumps(BASE)[:-1] + f', "extra": {deep}}}'
    if where == "batch":
        body = '{"reports": [' + body + "]}"
    decoder = wire.decode_report if where == "report" else wire.decode_batch
    with pytest.raises(wire.WireError) as err:
        decoder(body, now=NOW, max_age=AGE)
    assert err.value.malformed and "nested too deeply" in err.value.problem
