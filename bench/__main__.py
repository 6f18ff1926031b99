"""``make bench``: run every benchmark module and print one table of figures.

A module that fails to import or run prints its error, the others still run, and the exit code is
1 at the end. ``--strict`` also fails on a missed target.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import FrameType, ModuleType
from typing import Any

# (name, module, keyword arguments for run(); "quick" ones replace them with --quick)
MODULES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("ingest", "bench.ingest", {}, {"seconds": 4.0, "warmup": 1.0, "rounds": 1}),
    ("agent", "bench.agent_bench", {}, {}),
    ("agent_glances", "bench.agent_glances", {}, {"rounds": 1, "cycles": 5, "extra_procs": 0}),
    ("tui", "bench.tui_bench", {}, {}),
    ("history", "bench.history_bench", {}, {}),
    ("upgrade", "bench.upgrade_bench", {}, {"hosts": 5}),
    ("batch_stall", "bench.batch_stall", {}, {"seconds": 4.0, "rounds": 1}),
    ("stream_sweep", "bench.stream_sweep", {}, {}),
    ("conns", "bench.conns", {}, {"agents": 300, "anonymous": 50}),
    ("fleet", "bench.fleet", {}, {"agents": 300, "steady": 10.0}),
    ("notify", "bench.notify_flood", {}, {"rounds": 1}),
    ("shutdown", "bench.shutdown", {}, {"rounds": 1}),
    ("restore", "bench.restore", {}, {"agents": 100, "gap_min": 5.0}),
    ("metrics", "bench.metrics_scrape", {}, {"hosts": 1000, "rounds": 3}),
    ("status_page", "bench.status_page", {}, {"rounds": 1, "seconds": 3.0}),
    ("tsdb_disk", "bench.tsdb_disk", {}, {"hours": 6.0}),
    ("storage", "bench.storage", {}, {"days": 1, "rounds": 10}),
    ("deploy", "bench.deploy", {}, {"rounds": 1, "hosts": 3}),
]
MODULE_TIME_LIMIT_S = 900
OMIT = {"detail"}  # nested detail a module already printed while it ran


class TimeLimit(Exception):
    """A benchmark module ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise TimeLimit in the main thread after ``seconds`` (POSIX; no-op elsewhere)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(_sig: int, _frame: FrameType | None) -> None:
        raise TimeLimit(f"still running after {seconds} s; stopped")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def flatten(figures: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as dotted keys, in order; ``detail`` sub-dicts left out."""
    if not isinstance(figures, dict):
        return [(prefix or "result", figures)]
    rows: list[tuple[str, Any]] = []
    for key, value in figures.items():
        if key in OMIT:
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            rows += flatten(value, name)
        else:
            rows.append((name, value))
    return rows


def fmt(value: Any) -> str:
    """A figure for the table: thousands separators for rates, two decimals for ratios."""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:,.1f}"
        return f"{value:.3g}" if value else "0"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def missed_targets(figures: Any) -> list[str]:
    """Keys ending in ``_ok`` whose value is False: a target the run did not reach."""
    return [k for k, v in flatten(figures) if k.endswith("_ok") and v is False]


def print_table(results: dict[str, Any], errors: dict[str, str]) -> None:
    rows = [(mod, key, fmt(val)) for mod, figs in results.items() for key, val in flatten(figs)]
    w_mod = max([len(r[0]) for r in rows] + [6])
    w_key = max([len(r[1]) for r in rows] + [6])
    print()
    print("=" * 78)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"statusdash benchmarks  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {platform.node()}"
        f"  {os.cpu_count()} CPUs  Python {platform.python_version()}  load {load1:.2f}"
    )
    print("-" * 78)
    print(f"{'module':<{w_mod}}  {'figure':<{w_key}}  value")
    last = ""
    for mod, key, val in rows:
        print(f"{mod if mod != last else '':<{w_mod}}  {key:<{w_key}}  {val}")
        last = mod
    for name, err in errors.items():
        print(f"{name:<{w_mod}}  FAILED: {err}")
    print("=" * 78)


def run_module(name: str, mod: ModuleType, kwargs: dict[str, Any]) -> Any:
    run: Callable[..., Any] | None = getattr(mod, "run", None)
    if run is None:
        raise TypeError(f"{mod.__name__} has no run() function")
    with time_limit(MODULE_TIME_LIMIT_S):
        return run(**kwargs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    names = [m[0] for m in MODULES]
    ap.add_argument("--only", action="append", choices=names, help="run only these (repeatable)")
    ap.add_argument("--quick", action="store_true", help="shorter ingest phases (a smoke run)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed too")
    args = ap.parse_args(argv)

    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, modname, kwargs, quick in MODULES:
        if args.only and name not in args.only:
            continue
        print(f"--- {name} ({modname})", flush=True)
        t0 = time.monotonic()
        try:
            mod = importlib.import_module(modname)
            results[name] = run_module(name, mod, quick if args.quick else kwargs)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            print(f"    {name} FAILED after {time.monotonic() - t0:.0f} s:", file=sys.stderr)
            traceback.print_exc(limit=-3, file=sys.stderr)
        else:
            print(f"    {name} done in {time.monotonic() - t0:.0f} s", flush=True)

    print_table(results, errors)
    missed = {name: missed_targets(figs) for name, figs in results.items()}
    missed = {k: v for k, v in missed.items() if v}
    if missed:
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in missed.items())
        print(f"targets missed: {listed}")
    if errors:
        print(f"{len(errors)} benchmark module(s) failed: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
