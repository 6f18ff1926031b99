"""The read API's models carry the wire's report as the struct, in the wire's JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from statusdash import wire
from statusdash.schema import HostDetail, HostStatus, HostSummary
from tests.conftest import make_report

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def detail() -> HostDetail:
    summary = HostSummary(
        host="web-1",
        status=HostStatus.up,
        last_seen=NOW,
        seen_ago_s=0.0,
        collected_at=NOW,
        interval_s=10.0,
    )
    return HostDetail(summary=summary, report=wire.convert(make_report("web-1", at=NOW)))


def test_host_detail_writes_the_report_as_the_wire_json() -> None:
    d = detail()
    body = json.loads(d.model_dump_json(by_alias=True))
    assert body["report"] == json.loads(wire.encode(d.report))
    assert body["report"]["load"]["1m"] == 0.42


def test_host_detail_reads_the_report_back_as_the_struct() -> None:
    d = detail()
    again = HostDetail.model_validate_json(d.model_dump_json(by_alias=True))
    assert isinstance(again.report, wire.MetricsReport)
    assert again.report == d.report
    assert again.report.worst_disk is not None and again.report.worst_disk.percent == 55.0
    assert HostDetail.model_validate(d.model_dump()).report == d.report


def test_a_bad_report_in_a_host_detail_is_refused() -> None:
    body = json.loads(detail().model_dump_json())
    body["report"]["cpu"]["percent"] = 300
    with pytest.raises(ValidationError, match=r"cpu\.percent"):
        HostDetail.model_validate(body)


def test_the_openapi_schema_describes_the_report_as_an_object() -> None:
    schema = HostDetail.model_json_schema()
    assert schema["properties"]["report"]["type"] == "object"
