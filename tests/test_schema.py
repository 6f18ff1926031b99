"""Property tests of the wire schema's validation."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from statusdash.schema import MetricsReport
from tests.conftest import make_report

PERCENT_PATHS = [
    ("cpu", "percent"),
    ("memory", "percent"),
    ("swap", "percent"),
    ("cpu", "iowait"),
]
HOST_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
finite = st.floats(allow_nan=False, allow_infinity=False)
percents = st.floats(min_value=0, max_value=100)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def validate(report: dict[str, Any]) -> MetricsReport:
    return MetricsReport.model_validate_json(
        json.dumps(report), context={"now": NOW, "max_age": timedelta(days=30)}
    )


@settings(max_examples=150, deadline=None)
@given(cpu=percents, mem=percents, disk=percents, interval=st.floats(0.001, 86400))
def test_valid_reports_round_trip(cpu: float, mem: float, disk: float, interval: float) -> None:
    report = make_report("web-1", at=NOW, cpu=cpu, mem=mem, disk=disk, interval_s=interval)
    parsed = validate(report)
    again = MetricsReport.model_validate_json(
        parsed.model_dump_json(by_alias=True), context={"now": NOW}
    )
    assert again == parsed
    assert parsed.cpu is not None and parsed.cpu.percent == cpu


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(PERCENT_PATHS), value=finite)
def test_percentages_outside_0_100_are_refused(path: tuple[str, str], value: float) -> None:
    report = make_report("web-1", at=NOW)
    report[path[0]][path[1]] = value
    if 0 <= value <= 100:
        validate(report)
    else:
        with pytest.raises(ValidationError) as err:
            validate(report)
        assert ".".join(path) in str(err.value).replace("\n", ".")


@settings(max_examples=100, deadline=None)
@given(
    field=st.sampled_from(["interval_s", "load", "memory", "net", "disk"]),
    value=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_non_finite_numbers_are_refused_everywhere(field: str, value: float) -> None:
    report = make_report("web-1", at=NOW)
    target = {
        "interval_s": (report, "interval_s"),
        "load": (report["load"], "1m"),
        "memory": (report["memory"], "percent"),
        "net": (report["net"], "rx_bytes_s"),
        "disk": (report["disks"][0], "percent"),
    }[field]
    target[0][target[1]] = value
    text = json.dumps(report)  # Python writes NaN/Infinity literals, as a careless agent would
    with pytest.raises(ValidationError):
        MetricsReport.model_validate_json(text, context={"now": NOW})


@settings(max_examples=300, deadline=None)
@given(host=st.text(alphabet=st.characters(codec="ascii"), min_size=0, max_size=70))
def test_host_ids_follow_the_pattern(host: str) -> None:
    report = make_report("web-1", at=NOW)
    report["host"] = host
    if HOST_RE.fullmatch(host):
        assert validate(report).host == host
    else:
        with pytest.raises(ValidationError):
            validate(report)


@settings(max_examples=100, deadline=None)
@given(offset=st.integers(min_value=-40 * 86400, max_value=3600))
def test_collected_at_window(offset: int) -> None:
    report = make_report("web-1", at=NOW + timedelta(seconds=offset))
    ok = -30 * 86400 <= offset <= 300
    if ok:
        validate(report)
    else:
        with pytest.raises(ValidationError, match="collected_at"):
            validate(report)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(min_value=-(2**40), max_value=2**40))
def test_sizes_cannot_be_negative(size: int) -> None:
    report = make_report("web-1", at=NOW)
    report["memory"]["total"] = size
    if size >= 0:
        validate(report)
    else:
        with pytest.raises(ValidationError, match=r"memory\.total"):
            validate(report)
