"""The agent against Glances, side by side at the same interval (issue 13's agent budget).

Each round runs, one after the other on the same machine, the real agent (``bench.agent_bench``:
``statusdash agent run`` pushing over mTLS to the real server, every series of issue 13) and
Glances 4.5.8 (``glances -q --export json``: its full collection, processes included, written to a
JSON file each refresh), each for ``cycles`` refreshes at ``interval`` seconds. CPU per cycle is
the process's user + system time (schedstat, every thread) over the measured cycles, start-up
left out; peak RSS is VmHWM. ``--extra-procs`` first spawns that many idle processes (``sleep``,
killed at the end), so both tools walk a busier process table. Targets: agent CPU per cycle
<= 0.2x Glances', agent peak RSS <= 35 MB. Glances is a bench-only dependency (the ``bench``
extra); it is not part of statusdash.

    python -m bench.agent_glances --rounds 3 --cycles 20 --interval 1 --extra-procs 500
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import agent_bench

RATIO_TARGET = 0.2
RSS_TARGET_MB = 35.0
MAX_EXTRA_PROCS = 5000


class GlancesMissing(RuntimeError):
    pass


def _glances_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("glances")
    if not exe.exists():
        raise GlancesMissing("glances is not installed: pip install glances==4.5.8")
    return [str(exe)]


def glances(cycles: int, interval: float) -> dict[str, Any]:
    """CPU ms per refresh and peak RSS of Glances exporting JSON every ``interval`` seconds."""
    work = Path(tempfile.mkdtemp(prefix="statusdash-glances-bench-"))
    out = work / "glances.json"
    args = [
        *_glances_cmd(), "-q", "--disable-check-update", "--export", "json",
        "--export-json-file", str(out), "-t", str(interval),
    ]  # fmt: skip
    proc = subprocess.Popen(args, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not out.exists():  # start-up, plugin loading and the first refresh
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("glances did not write its first export")
            time.sleep(0.05)
        time.sleep(2 * interval)  # a refresh or two more: its caches warm, as ours are primed
        cpu0, t0 = agent_bench._cpu_s(proc.pid), time.monotonic()
        time.sleep(cycles * interval)
        cpu1, t1 = agent_bench._cpu_s(proc.pid), time.monotonic()
        hwm_kb = agent_bench._status_kb(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(work, ignore_errors=True)
    refreshes = (t1 - t0) / interval
    return {
        "cpu_ms_per_cycle": round((cpu1 - cpu0) / refreshes * 1000, 2),
        "peak_rss_mb": round(hwm_kb / 1024, 1),
    }


class ExtraProcesses:
    """``n`` idle processes for the length of a ``with`` block; all killed and reaped after."""

    def __init__(self, n: int) -> None:
        if not 0 <= n <= MAX_EXTRA_PROCS:
            raise ValueError(f"extra processes must be 0 to {MAX_EXTRA_PROCS}")
        self.n = n
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> ExtraProcesses:
        sleep = shutil.which("sleep") or "/bin/sleep"
        try:
            for _ in range(self.n):  # they end by themselves after an hour if we are killed
                self._procs.append(subprocess.Popen([sleep, "3600"]))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self._procs:
            p.kill()
        for p in self._procs:
            p.wait(10)
        self._procs.clear()


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(
    rounds: int = 3, cycles: int = 20, interval: float = 1.0, extra_procs: int = 500
) -> dict[str, Any]:
    """``rounds`` side-by-side runs; medians and ranges, and the ratio of the medians.

    Without Glances installed (it is not a dependency) the figures say so, rather than fail.
    """
    try:
        _glances_cmd()
    except GlancesMissing as exc:
        return {"skipped": str(exc)}
    agent: list[dict[str, Any]] = []
    peer: list[dict[str, Any]] = []
    with ExtraProcesses(extra_procs):
        processes = len([d for d in os.listdir("/proc") if d.isdigit()])
        for _ in range(rounds):
            agent.append(agent_bench.run(cycles, interval))
            peer.append(glances(cycles, interval))
    a_cpu = _summary([r["cpu_ms_per_cycle"] for r in agent])
    g_cpu = _summary([r["cpu_ms_per_cycle"] for r in peer])
    a_rss = _summary([r["peak_rss_mb"] for r in agent])
    g_rss = _summary([r["peak_rss_mb"] for r in peer])
    ratios = [
        a["cpu_ms_per_cycle"] / g["cpu_ms_per_cycle"] for a, g in zip(agent, peer, strict=True)
    ]
    ratio = round(a_cpu["median"] / g_cpu["median"], 3)
    return {
        "rounds": rounds,
        "cycles": cycles,
        "interval_s": interval,
        "processes_on_host": processes,
        "agent_cpu_ms": a_cpu,
        "glances_cpu_ms": g_cpu,
        "cpu_ratio": ratio,
        "cpu_ratio_per_round": [round(r, 3) for r in ratios],
        "agent_collect_cpu_ms_mean": [r["collect_cpu_ms_mean"] for r in agent],
        "agent_peak_rss_mb": a_rss,
        "glances_peak_rss_mb": g_rss,
        "agent_report_bytes_mean": statistics.mean(r["report_bytes_mean"] for r in agent),
        "cpu_ok": ratio <= RATIO_TARGET,
        "rss_ok": a_rss["max"] <= RSS_TARGET_MB,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.agent_glances", description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--extra-procs", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        fig = run(args.rounds, args.cycles, args.interval, args.extra_procs)
    except (GlancesMissing, agent_bench.AgentBenchError) as exc:
        print(f"agent vs glances: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(fig, indent=2))
        return 0
    if "skipped" in fig:
        print(f"agent vs glances: {fig['skipped']}", file=sys.stderr)
        return 1
    a, g = fig["agent_cpu_ms"], fig["glances_cpu_ms"]
    ar, gr = fig["agent_peak_rss_mb"], fig["glances_peak_rss_mb"]
    ok = {True: "ok", False: "OVER TARGET"}
    print(
        f"agent vs glances: {fig['rounds']} rounds x {fig['cycles']} cycles at"
        f" {fig['interval_s']} s, {fig['processes_on_host']} processes on the host\n"
        f"  CPU per cycle  agent {a['median']:.2f} ms ({a['min']:.2f}-{a['max']:.2f})"
        f"  glances {g['median']:.2f} ms ({g['min']:.2f}-{g['max']:.2f})"
        f"  ratio {fig['cpu_ratio']:.3f} (target <= {RATIO_TARGET}; {ok[fig['cpu_ok']]};"
        f" per round {fig['cpu_ratio_per_round']})\n"
        f"  peak RSS       agent {ar['median']:.1f} MB ({ar['min']:.1f}-{ar['max']:.1f})"
        f"  glances {gr['median']:.1f} MB ({gr['min']:.1f}-{gr['max']:.1f})"
        f"  (target <= {RSS_TARGET_MB:g} MB; {ok[fig['rss_ok']]})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
