"""``statusdash history HOST SELECTOR`` and ``statusdash hosts series HOST`` against a real
server: one series, a block per series when several, the JSON answers as they came, and one-line
errors (exit 1) for bad selectors, checked before anything is sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.schema import HistorySet, LabelledHistory, SeriesInfo
from tests.conftest import Live, free_port, make_report

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("client_env")
N = 12
MOUNTS = {"/": 40.0, "/data": 60.0}


def _disks(i: int) -> list[dict[str, Any]]:
    return [
        {"mount": m, "fstype": "ext4", "total": 100 << 30, "used": 1 << 30, "percent": v + i}
        for m, v in MOUNTS.items()
    ]


@pytest.fixture
def stored(live_server: Live) -> Live:
    now = datetime.now(UTC).replace(microsecond=0)
    reports = [
        make_report("web-1", at=now - timedelta(minutes=N - i), interval_s=60, disks=_disks(i))
        for i in range(N)
    ]
    with live_server.agent("web-1") as agent:
        agent.post("/api/metrics/batch", json={"reports": reports}).raise_for_status()
    return live_server


def _env(live: Live) -> dict[str, str]:
    return {"STATUSDASH_SERVER": live.url, "STATUSDASH_TOKEN": live.token()}


def _run(live: Live, *args: str) -> Any:
    return runner.invoke(app, list(args), env=_env(live))


def test_one_series_by_selector_as_json(stored: Live) -> None:
    r = _run(
        stored,
        "history",
        "web-1",
        'disk.mount.percent{mount="/data"}',
        "--since",
        "20m",
        "--points",
        "2000",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    one = LabelledHistory.model_validate(json.loads(r.stdout))
    assert one.labels == {"mount": "/data"}
    assert [p.avg for p in one.points] == [60.0 + i for i in range(N)]


def test_several_series_print_one_block_each_when_piped(stored: Live) -> None:
    r = _run(stored, "history", "web-1", "disk.mount.percent", "--since", "20m", "--points", "2000")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("# ")]
    assert [lines[i] for i in heads] == [
        '# web-1 disk.mount.percent{mount="/"}',
        '# web-1 disk.mount.percent{mount="/data"}',
    ]
    first_block = lines[heads[0] + 1 : heads[1]]
    assert first_block[0] == "TIME AVG[%] MIN[%] MAX[%] SAMPLES"
    assert [float(row.split()[1]) for row in first_block[1:]] == [40.0 + i for i in range(N)]
    as_json = _run(stored, "history", "web-1", "disk.mount.percent", "--since", "20m", "--json")
    got = HistorySet.model_validate(json.loads(as_json.stdout))
    assert got.total == 2 and [s.labels for s in got.series] == [{"mount": "/"}, {"mount": "/data"}]


def test_hosts_series_lists_them(stored: Live) -> None:
    r = _run(stored, "hosts", "series", "web-1", "--json")
    assert r.exit_code == 0, r.stderr
    rows = [SeriesInfo.model_validate(s) for s in json.loads(r.stdout)]
    assert {s.labels["mount"] for s in rows if s.metric == "disk.mount.percent"} == set(MOUNTS)
    table = _run(stored, "hosts", "series", "web-1", "--metric", 'disk.mount.percent{mount="/"}')
    assert table.exit_code == 0, table.stderr
    assert 'disk.mount.percent{mount="/"}' in table.stdout and "1 series" in table.stdout
    assert "/data" not in table.stdout


@pytest.mark.parametrize(
    ("selector", "needle"),
    [
        ('disk.mount.percent{mount="/"', "column 29: expected ',' or '}'"),
        ('disk.mount.percent{mount=~"(x"}', "bad regex"),
    ],
)
def test_a_bad_selector_is_one_line_before_anything_is_sent(selector: str, needle: str) -> None:
    nowhere = {"STATUSDASH_SERVER": f"http://127.0.0.1:{free_port()}", "STATUSDASH_TOKEN": "t"}
    for args in (
        ["history", "web-1", selector],
        ["hosts", "series", "web-1", "--metric", selector],
    ):
        r = runner.invoke(app, args, env=nowhere)
        assert r.exit_code == 1
        assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_labels_are_checked_against_the_servers_catalogue(stored: Live) -> None:
    r = _run(stored, "history", "web-1", 'disk.mount.percent{device="sda"}')
    assert r.exit_code == 1
    assert r.stderr.strip() == (
        "statusdash: selector: column 20: no label 'device'; its labels: mount"
    )


def test_a_selector_matching_nothing_names_what_exists(stored: Live) -> None:
    r = _run(stored, "history", "web-1", 'disk.mount.percent{mount="/nope"}')
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert '{mount="/"}' in r.stderr and '{mount="/data"}' in r.stderr
