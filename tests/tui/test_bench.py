"""The TUI benchmark runs end to end (briefly), so ``make bench`` cannot rot unnoticed."""

from __future__ import annotations

from bench import tui_bench


def test_bench_runs_briefly() -> None:
    result = tui_bench.run(hosts=40, seconds=1.5)
    assert result["name"] == "tui-stream" and result["rows"] == 40
    assert result["link"] == "live" and result["stream_batches"] >= 1
    assert 0 < result["cpu_pct_one_core"] < 100 and result["first_data_s"] < 5
    assert set(result) >= {"cpu_pct_one_core", "cpu_target_pct", "cpu_ok", "max_rss_mb"}
