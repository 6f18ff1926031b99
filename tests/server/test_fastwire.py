"""The fast batch decoder never accepts what the wire schema refuses, and reads the same values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from statusdash.schema import MetricsBatch, MetricsReport, metric_values
from statusdash.server.fastwire import decode_batch, decode_report, to_json, to_model
from tests.conftest import make_report

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AGE = timedelta(days=30)
CTX = {"now": NOW, "max_age": AGE}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def rich_report() -> dict[str, Any]:
    """A report with every section filled, as a real agent sends it."""
    r = make_report("web-1", at=NOW - timedelta(seconds=30))
    r["temps"] = [{"sensor": "coretemp", "label": "Core 0", "current": 48.0, "high": 80.0}]
    r["disk_io"]["devices"] = {"sda": {"read_bytes_s": 10.0, "write_bytes_s": 5.5}}
    r["net"]["interfaces"] = {"eth0": {"rx_bytes_s": 1.0, "tx_bytes_s": 2.0}}
    proc = {"pid": 1, "name": "init", "user": "root", "cpu_percent": 0.5, "memory_percent": 0.1}
    r["processes"]["top_cpu"] = [proc]
    r["processes"]["top_memory"] = [proc]
    r["services"] = [
        {"name": "nginx", "kind": "http", "status": "healthy", "checked_at": NOW.isoformat()}
    ]
    return r


BASE = rich_report()
PATHS = _paths(BASE)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e400, -1e400, 100.0000001, -0.0, 1e308, "12", "", "x" * 300, [], {}]),
    st.text(max_size=8),
    st.sampled_from(["2026-11-27T11:00:00", "2026-11-27T11:00:00+02:00", "Z", "healthy"]),
)


def body_with(path: tuple[Any, ...], value: Any) -> bytes:
    report = json.loads(json.dumps(BASE))
    node = report
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps({"reports": [report]}).encode()


def _pydantic(body: bytes) -> MetricsBatch | None:
    try:
        return MetricsBatch.model_validate_json(body, context=CTX)
    except ValidationError:
        return None


@settings(max_examples=600, deadline=None)
@given(path=st.sampled_from(PATHS), value=values)
def test_whatever_the_fast_decoder_accepts_the_schema_accepts_alike(
    path: tuple[Any, ...], value: Any
) -> None:
    body = body_with(path, value)
    fast = decode_batch(body, NOW, AGE)
    if fast is None:
        return  # pydantic decides; the server's answer is pydantic's
    slow = _pydantic(body)
    assert slow is not None, f"fast path accepted what the schema refuses: {path} = {value!r}"
    (model,) = slow.reports
    assert to_model(fast[0]) == model
    assert metric_values(fast[0]) == metric_values(model)
    # the single-report route decodes with the same struct
    single = json.dumps(json.loads(body)["reports"][0]).encode()
    one = decode_report(single, NOW, AGE)
    assert one is not None and to_model(one) == model
    # and what the host row keeps reads back as the same report
    stored = MetricsReport.model_validate_json(to_json(one), context={"now": NOW})
    assert stored == model


def test_valid_reports_take_the_fast_path() -> None:
    body = json.dumps({"reports": [BASE, make_report("web-1", at=NOW)]}).encode()
    fast = decode_batch(body, NOW, AGE)
    assert fast is not None and len(fast) == 2
    assert to_model(fast[0]) == MetricsBatch.model_validate_json(body, context=CTX).reports[0]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("cpu", "percent"), 1e400),  # JSON's way to say infinity
        (("net", "rx_bytes_s"), 1e400),
        (("collected_at",), "2026-11-27T11:00:00"),  # no UTC offset
        (("collected_at",), (NOW + timedelta(minutes=6)).isoformat()),
        (("collected_at",), (NOW - timedelta(days=31)).isoformat()),
        (("schema_version",), 2),
        (("host",), "Web-1"),
        (("memory", "total"), -1),
    ],
)
def test_the_fast_decoder_defers_to_the_schema(path: tuple[Any, ...], value: Any) -> None:
    body = body_with(path, value)
    assert decode_batch(body, NOW, AGE) is None
    assert _pydantic(body) is None


def test_unknown_fields_are_ignored_on_the_fast_path_too() -> None:
    report = json.loads(json.dumps(BASE))
    report["gpu"] = {"percent": 3}
    report["cpu"]["future"] = 1
    fast = decode_batch(json.dumps({"reports": [report]}).encode(), NOW, AGE)
    assert fast is not None
