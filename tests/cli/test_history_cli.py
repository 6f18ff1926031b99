"""Issue 11, item 18 (history): ``statusdash history HOST METRIC`` against a real server.

``--json`` is parsed back and checked against the reports stored; a pipe gets the same buckets
as a plain table; a terminal (a real pty) gets the chart with min/avg/max in the unit; an
unknown metric lists what ``GET /api/history/metrics`` says exists.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from statusdash.cli.main import app
from statusdash.schema import HistorySeries
from tests.conftest import Live, make_report

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("client_env")
N = 30
VALUES = [10.0 + 2.5 * i for i in range(N)]  # cpu.percent, one report a minute; exact in 1/100


@pytest.fixture
def stored(live_server: Live) -> tuple[Live, list[tuple[datetime, float]]]:
    """web-1's reports over the last half hour: (collected_at, cpu) for each one stored."""
    now = datetime.now(UTC).replace(microsecond=0)
    sent = [(now - timedelta(minutes=N - i), v) for i, v in enumerate(VALUES)]
    with live_server.agent("web-1") as agent:
        for at, cpu in sent:
            report = make_report("web-1", at=at, cpu=cpu, interval_s=60)
            agent.post("/api/metrics/report", json=report).raise_for_status()
    return live_server, sent


def _env(live: Live) -> dict[str, str]:
    return {"STATUSDASH_SERVER": live.url, "STATUSDASH_TOKEN": live.token()}


def _json(live: Live, *args: str) -> HistorySeries:
    r = runner.invoke(app, ["history", "web-1", "cpu.percent", *args, "--json"], env=_env(live))
    assert r.exit_code == 0, r.stderr
    return HistorySeries.model_validate(json.loads(r.stdout))


def test_json_buckets_are_the_stored_reports(
    stored: tuple[Live, list[tuple[datetime, float]]],
) -> None:
    live, sent = stored
    series = _json(live, "--since", "40m", "--points", "2000")  # finer than the reports
    assert (series.host, series.metric, series.tier) == ("web-1", "cpu.percent", "raw")
    assert len(series.points) == N
    for p, (at, cpu) in zip(series.points, sent, strict=True):
        assert p.t <= at < p.t + timedelta(seconds=series.bucket_s)  # the bucket it falls in
        assert (p.avg, p.min, p.max, p.count) == (cpu, cpu, cpu, 1)


def test_coarse_buckets_keep_every_sample(
    stored: tuple[Live, list[tuple[datetime, float]]],
) -> None:
    live, _ = stored
    series = _json(live, "--since", "40m", "--points", "4")
    assert 1 <= len(series.points) <= 4
    assert sum(p.count for p in series.points) == N
    assert min(p.min for p in series.points) == min(VALUES)
    assert max(p.max for p in series.points) == max(VALUES)
    mean = sum(p.avg * p.count for p in series.points) / N
    assert mean == pytest.approx(sum(VALUES) / N)


def test_a_pipe_gets_a_plain_table_of_the_same_buckets(
    stored: tuple[Live, list[tuple[datetime, float]]],
) -> None:
    live, sent = stored
    args = ["history", "web-1", "cpu.percent", "--since", "40m", "--points", "2000"]
    r = runner.invoke(app, args, env=_env(live))
    assert r.exit_code == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split() == ["TIME", "AVG[%]", "MIN[%]", "MAX[%]", "SAMPLES"]
    bucket = timedelta(minutes=40) / 2000
    assert len(rows) == N
    for row, (at, cpu) in zip(rows, sent, strict=True):
        t, avg, low, high, count = row.split()
        assert datetime.fromisoformat(t) <= at < datetime.fromisoformat(t) + bucket
        assert (float(avg), float(low), float(high), int(count)) == (cpu, cpu, cpu, 1)


def _in_a_terminal(live: Live, *args: str, columns: int = 80) -> str:
    """The command's stdout on a real pty (stdout is a terminal), as the user sees it."""
    primary, secondary = pty.openpty()
    env = {**os.environ, **_env(live), "COLUMNS": str(columns)}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "statusdash.cli", "history", "web-1", *args],
            stdout=secondary,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
        )
        os.close(secondary)
        assert out.returncode == 0, out.stderr
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the pty is drained and closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_a_terminal_gets_a_chart_with_min_avg_max(
    stored: tuple[Live, list[tuple[datetime, float]]],
) -> None:
    live, _ = stored
    title, line, summary = _in_a_terminal(live, "cpu.percent", "--since", "40m").splitlines()
    assert title.startswith("web-1 cpu.percent  ") and "UTC (40m" in title
    assert 0 < len(line) <= 80 - 2 and set(line.strip()) <= set("▁▂▃▄▅▆▇█ ")
    assert line.strip()[-1] in "▆▇█"  # the last values (80%) are near the top of 0-100%
    avg = sum(VALUES) / N
    assert summary.startswith(f"min 10.0%  avg {avg:.1f}%  max 82.5%  (30 samples")

    _, _, rate = _in_a_terminal(live, "net.rx_bytes_s", "--since", "40m").splitlines()
    assert rate.startswith("min 12K/s  avg 12K/s  max 12K/s")  # make_report: 12,000 B/s


def test_an_unknown_metric_lists_what_exists(
    stored: tuple[Live, list[tuple[datetime, float]]],
) -> None:
    live, _ = stored
    with live.reader() as reader:
        known = sorted(reader.get("/api/history/metrics").json())
    r = runner.invoke(app, ["history", "web-1", "cpu.bogus"], env=_env(live))
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.strip() == (
        f"statusdash: no metric 'cpu.bogus'; the server keeps: {', '.join(known)}"
    )


def test_bad_input_is_one_line(stored: tuple[Live, list[tuple[datetime, float]]]) -> None:
    live, _ = stored
    env = _env(live)
    r = runner.invoke(app, ["history", "Not A Host!", "cpu.percent"], env=env)
    assert r.exit_code == 2 and "is not a valid host id" in r.stderr
    r = runner.invoke(app, ["history", "nope", "cpu.percent"], env=env)
    assert r.exit_code == 1 and "no host named 'nope'" in r.stderr
    r = runner.invoke(app, ["history", "web-1", "cpu.percent", "--since", "soon"], env=env)
    assert r.exit_code == 1 and "since: 'soon' is neither" in r.stderr
    assert "Traceback" not in r.stderr
