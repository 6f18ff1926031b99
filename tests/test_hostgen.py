"""bench/hostgen: the typical host's reports are valid wire reports with the issue's shape."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.hostgen import series_values, typical_host_reports

from statusdash import wire


def test_typical_host_reports_are_wire_valid_and_about_80_series() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    reports = list(typical_host_reports(start, 0.5, seed=3))
    assert len(reports) == 180  # 30 minutes at 10 s
    for rep in reports:
        parsed = wire.convert(rep)
        assert parsed.host == "typical-host"
        assert parsed.cpu is not None and len(parsed.cpu.per_core) == 8
        assert len(parsed.disks) == 4
    times = [datetime.fromisoformat(r["collected_at"]) for r in reports]
    assert times == sorted(times) and len(set(times)) == len(times)
    per_report = [len(series_values(r)) for r in reports]
    assert min(per_report) >= 60 and max(per_report) <= 120
    assert all(isinstance(v, int) for v in series_values(reports[0]).values())


def test_same_seed_same_reports() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    a = list(typical_host_reports(start, 0.1, seed=5))
    b = list(typical_host_reports(start, 0.1, seed=5))
    assert a == b
