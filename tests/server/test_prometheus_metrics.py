"""GET /metrics in-process: a real server on a loopback port, parsed with prometheus_client."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from statusdash import catalog
from statusdash.server import prom
from statusdash.server.app import create_app
from statusdash.server.context import context_of
from tests.conftest import Live, RunningServer, TlsLive, make_report, make_settings

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def scrape(client: httpx.Client) -> dict[str, list[Sample]]:
    """GET /metrics, parsed: family name -> its samples (the parser raises on bad text)."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}


def value(families: dict[str, list[Sample]], name: str, **labels: str) -> float:
    """The one sample ``name`` with exactly these labels (the family name is looked up)."""
    for samples in families.values():
        for s in samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"no sample {name}{labels}")


@pytest.fixture
def fleet_server(tmp_path: Path) -> Iterator[Live]:
    """A plain-HTTP server with METRICS_FLEET=true."""
    server = RunningServer(make_settings(tmp_path / "data", metrics_fleet=True)).start()
    try:
        yield Live(server)
    finally:
        server.stop()


def test_the_exposition_parses_and_follows_the_conventions(live_server: Live) -> None:
    with live_server.agent("web-1") as agent:
        report = make_report("web-1")
        assert agent.post("/api/metrics/report", json=report).status_code == 200
        assert agent.post("/api/metrics/report", json=report).json()["duplicates"] == 1
    with live_server.reader() as reader:
        families = scrape(reader)
    for name, samples in families.items():
        assert NAME.match(name) and name.startswith("statusdash_"), name
        for s in samples:
            assert NAME.match(s.name), s.name
    kinds = {f.name: f.type for f in text_string_to_metric_families(reader_text(live_server))}
    assert kinds["statusdash_ingest_reports"] == "counter"
    assert kinds["statusdash_storage_commit_seconds"] == "histogram"
    assert value(families, "statusdash_ingest_reports_total", outcome="accepted") == 1
    assert value(families, "statusdash_ingest_reports_total", outcome="duplicate") == 1
    assert value(families, "statusdash_storage_commit_seconds_count") >= 2
    assert value(families, "statusdash_storage_commits_total") >= 2
    assert value(families, "statusdash_storage_queue_requests") >= 0
    assert value(families, "statusdash_hosts", status="up") == 1
    assert value(families, "statusdash_stream_subscribers") == 0
    assert value(families, "statusdash_notifications_failed_total") == 0
    assert value(families, "statusdash_rollup_pending_rows") >= 0
    assert value(families, "statusdash_conn_refused_total") == 0  # served by our protocol
    assert "statusdash_job_runs" in families and "statusdash_alerts_open" in families


def reader_text(live: Live) -> str:
    with live.reader() as reader:
        return reader.get("/metrics").text


def test_fleet_metrics_are_off_by_default(live_server: Live) -> None:
    with live_server.agent("web-1") as agent:
        assert agent.post("/api/metrics/report", json=make_report("web-1")).status_code == 200
    text = reader_text(live_server)
    assert 'host="web-1"' not in text
    assert "statusdash_cpu_percent" not in text and "statusdash_host_up" not in text
    assert live_server.settings.metrics_fleet is False


def test_readers_only(live_server: Live) -> None:
    anonymous = httpx.get(f"{live_server.url}/metrics")
    assert anonymous.status_code == 401
    assert set(anonymous.json()) >= {"error", "detail"}
    forged = httpx.get(f"{live_server.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert forged.status_code == 401
    with live_server.agent("web-1") as agent:  # an agent's key is not a reader
        assert agent.get("/metrics").status_code in (401, 403)


def test_the_counters_move_with_ingest(live_server: Live) -> None:
    with live_server.reader() as reader:
        before = scrape(reader)
        with live_server.agent("web-1") as agent:
            for _ in range(3):
                assert agent.post("/api/metrics/report", json=make_report("web-1")).is_success
            batch = {"reports": [make_report("web-1") for _ in range(4)]}
            assert agent.post("/api/metrics/batch", json=batch).json()["accepted"] == 4
            wrong = agent.post("/api/metrics/report", json=make_report("db-1"))
            assert wrong.status_code == 403
            bad = agent.post("/api/metrics/report", content=b"{not json")
            assert bad.status_code == 400
        after = scrape(reader)

    def moved(name: str, **labels: str) -> float:
        old = value(before, name, **labels) if _has(before, name, labels) else 0.0
        return value(after, name, **labels) - old

    assert moved("statusdash_ingest_reports_total", outcome="accepted") == 7
    assert moved("statusdash_ingest_reports_total", outcome="duplicate") == 0
    assert moved("statusdash_storage_commit_seconds_count") >= 2
    refused = "statusdash_ingest_refused_requests_total"
    assert moved(refused, reason="host_mismatch") == 1
    assert moved(refused, reason="malformed_json") == 1


def _has(families: dict[str, list[Sample]], name: str, labels: dict[str, str]) -> bool:
    return any(s.name == name and s.labels == labels for v in families.values() for s in v)


def test_fleet_metrics_carry_the_latest_values(fleet_server: Live) -> None:
    with fleet_server.agent("web-1") as agent:
        report = make_report("web-1", cpu=37.5, mem=61.25, disk=70.0)
        assert agent.post("/api/metrics/report", json=report).status_code == 200
    with fleet_server.reader() as reader:
        families = scrape(reader)
    assert value(families, "statusdash_cpu_percent", host="web-1") == 37.5
    assert value(families, "statusdash_memory_percent", host="web-1") == 61.25
    assert value(families, "statusdash_disk_percent", host="web-1") == 70.0
    assert value(families, "statusdash_net_rx_bytes_per_second", host="web-1") == 12000.0
    assert value(families, "statusdash_load_1m", host="web-1") == 0.42
    assert value(families, "statusdash_host_up", host="web-1") == 1
    assert value(families, "statusdash_host_status", host="web-1", status="up") == 1
    assert not _has(families, "statusdash_host_status", {"host": "web-1", "status": "down"})
    assert value(families, "statusdash_host_last_report_timestamp_seconds", host="web-1") == (
        datetime.fromisoformat(report["collected_at"]).timestamp()
    )
    helps = {
        f.name: f.documentation for f in text_string_to_metric_families(reader_text(fleet_server))
    }
    for name, m in prom.fleet_series():
        assert m.description in helps[name]  # help and unit come from the catalogue


def test_names_derive_from_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [name for name, _ in prom.fleet_series()]
    assert len(names) == len(set(names)) == len([m for m in catalog.METRICS if not m.labels])
    assert all(NAME.match(n) for n in names)
    assert {m.unit for m in catalog.METRICS if not m.labels} <= set(prom.UNIT_SUFFIX)
    by_name = catalog.by_name()
    assert prom.prom_name(by_name["cpu.percent"]) == "statusdash_cpu_percent"
    assert prom.prom_name(by_name["cpu.iowait"]) == "statusdash_cpu_iowait_percent"
    assert prom.prom_name(by_name["disk_io.write_bytes_s"]) == (
        "statusdash_disk_io_write_bytes_per_second"
    )
    labelled = catalog.Metric(
        "cpu.core.percent", "%", "one core", lambda r: None, "c", 1, ("core",)
    )
    monkeypatch.setattr(catalog, "METRICS", (*catalog.METRICS, labelled))
    assert "statusdash_cpu_core_percent" not in [n for n, _ in prom.fleet_series()]


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    a = context_of(create_app(make_settings(tmp_path / "a")))
    b = context_of(create_app(make_settings(tmp_path / "b")))  # no "duplicated timeseries"
    assert a.metrics.registry is not b.metrics.registry
    assert prometheus_client.REGISTRY not in (a.metrics.registry, b.metrics.registry)
    a.metrics.ingest_refused.labels("x").inc()
    assert (
        b.metrics.registry.get_sample_value(
            "statusdash_ingest_refused_requests_total", {"reason": "x"}
        )
        is None
    )


def test_a_viewer_certificate_reads_it_over_mtls(tmp_path: Path, vault_template: Path) -> None:
    """Over mTLS with the fleet on, every family is there, and each is in docs/metrics.md."""
    vault = tmp_path / "vault"
    shutil.copytree(vault_template, vault)
    settings = make_settings(
        tmp_path / "data", mtls_enabled=True, vault_path=vault, metrics_fleet=True
    )
    live = TlsLive(RunningServer(settings).start(), vault=vault)
    try:
        with live.client("viewer") as viewer, live.client("web-1") as agent:
            assert agent.post("/api/metrics/report", json=make_report("web-1")).is_success
            families = scrape(viewer)
            text = viewer.get("/metrics").text
            assert agent.get("/metrics").status_code == 403
        with live.client(None) as anonymous:
            assert anonymous.get("/metrics").status_code == 401
    finally:
        live.server.stop()
    assert value(families, "statusdash_tls_accepted_total") >= 2
    assert value(families, "statusdash_tls_accept_paused_seconds_total") >= 0
    assert value(families, "statusdash_ingest_reports_total", outcome="accepted") == 1
    doc = (ROOT / "docs" / "metrics.md").read_text()
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        if name.endswith("_created"):  # prometheus_client's creation time of a live instrument
            base = name.removesuffix("_created")
            name = base if f"`{base}`" in doc else f"{base}_total"
        assert f"`{name}`" in doc, f"{name} is not in docs/metrics.md"


def test_the_per_host_limit_is_counted_by_report_and_by_request(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ingest_max_reports_per_interval=1)
    live = Live(RunningServer(settings).start())
    try:
        with live.agent("web-1") as agent:
            assert agent.post("/api/metrics/report", json=make_report("web-1")).is_success
            batch = {"reports": [make_report("web-1") for _ in range(3)]}
            assert agent.post("/api/metrics/batch", json=batch).status_code == 429
        with live.reader() as reader:
            families = scrape(reader)
    finally:
        live.server.stop()
    assert value(families, "statusdash_ingest_reports_total", outcome="accepted") == 1
    assert value(families, "statusdash_ingest_reports_total", outcome="rate_limited") == 3
    refused = "statusdash_ingest_refused_requests_total"
    assert value(families, refused, reason="ingest_limit") == 1
