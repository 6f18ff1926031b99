"""Small-request latency while big batches arrive: a big batch must not stall the server.

The real app (bench/serve.py, plain HTTP on loopback, SQLite FULL) takes small ``/report``
requests from one client, one at a time, first alone (the baseline) and then while two other
processes post ~0.8 MB batches of 500 reports (the cap) back to back, alternating good ones (new
reports, stored) and bad ones (the last report invalid: decoded whole, answered 422 with its
``report_index``). The figure is the p99 of the small requests under that load; the target is
50 ms. Beside it, the server's own event-loop lag during the loaded phase (how late its loop
woke a 5 ms sleeper: how long one batch held the loop), which on a shared two-core machine is
the figure the clients' latencies cannot separate from their own scheduling. Every answer is
checked: a small request that is not stored, a good batch not accepted
whole or a bad batch not naming its last index fails the run.

    python -m bench.batch_stall --seconds 8 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import serve
from bench.payload import REPORT_INTERVAL_S, report_dict
from statusdash import wire

P99_TARGET_MS = 50.0
BATCH = wire.MAX_BATCH_REPORTS  # the largest batch the server takes: the worst case
SENDERS = 2
REQUEST_TIMEOUT_S = 60.0


class BenchError(RuntimeError):
    """An answer that says the server lost, refused or mangled something it should not have."""


def _at(now: datetime, window: int) -> str:
    """The collected_at of the ``window``-th interval back from ``now`` (a window of its own)."""
    return (now - timedelta(seconds=REPORT_INTERVAL_S * window)).isoformat()


def _batch(host: str, now: datetime, first_window: int, bad: bool) -> bytes:
    reports = [
        report_dict(host, str(uuid.uuid4()), _at(now, first_window + i)) for i in range(BATCH)
    ]
    if bad:
        reports[-1]["cpu"]["percent"] = 101.0
    return json.dumps({"reports": reports}, separators=(",", ":")).encode()


def _sender(url: str, key: str, host: str, first_bad: bool, stop_at: float, out: Any) -> None:
    """Post good and bad batches by turns until ``stop_at`` (a separate process)."""
    now = datetime.now(UTC)
    sent: dict[str, Any] = {"good": 0, "bad": 0, "bytes": 0, "error": ""}
    headers = {"X-API-Key": key, "content-type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        k = 0
        while time.monotonic() < stop_at and k < 1000:
            bad = (k % 2 == 1) != first_bad
            body = _batch(host, now, 1 + k * BATCH, bad)
            r = client.post("/api/metrics/batch", content=body)
            ok = (
                r.status_code == 422 and r.json().get("report_index") == BATCH - 1
                if bad
                else r.status_code == 200 and _counts(r.json()) == (BATCH, 0)
            )
            if not ok:
                sent["error"] = f"batch {k} ({'bad' if bad else 'good'}): {r.status_code} {r.text}"
                break
            sent["bad" if bad else "good"] += 1
            sent["bytes"] += len(body)
            k += 1
    out.put(sent)


def _counts(ack: Any) -> tuple[Any, Any]:
    """An acknowledgement's counts (it may carry more fields, e.g. ``high_water``)."""
    return (ack.get("accepted"), ack.get("duplicates")) if isinstance(ack, dict) else (None, None)


def _small(url: str, key: str, host: str, seconds: float, start_window: int) -> list[float]:
    """Small reports one at a time for ``seconds``; each one's latency in milliseconds."""
    now = datetime.now(UTC)
    latencies: list[float] = []
    headers = {"X-API-Key": key, "content-type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end and i < 100_000:
            body = json.dumps(report_dict(host, str(uuid.uuid4()), _at(now, start_window + i)))
            t0 = time.perf_counter()
            r = client.post("/api/metrics/report", content=body)
            latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200 or _counts(r.json()) != (1, 0):
                raise BenchError(f"small report {i}: {r.status_code} {r.text}")
            i += 1
    return latencies


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else 0


def one_round(work: Path, seconds: float, round_no: int) -> dict[str, Any]:
    hosts = ["small", *[f"bulk-{i}" for i in range(SENDERS)]]
    clients, _ = serve.provision(work / "data", hosts, tls=False)
    keys = {c.host: str(c.api_key) for c in clients}
    server = serve.start(work, False, "FULL", "default", clients[0])
    try:
        url = f"http://127.0.0.1:{server.info['port']}"
        base = _small(url, keys["small"], "small", seconds / 2, 1)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        stop_at = time.monotonic() + seconds + 5  # the senders start up before the measure
        procs = [
            ctx.Process(target=_sender, args=(url, keys[h], h, i % 2 == 1, stop_at, out))
            for i, h in enumerate(hosts[1:])
        ]
        for p in procs:
            p.start()
        time.sleep(3)  # let the first batches arrive
        httpx.get(url + serve.LAG_PATH, timeout=REQUEST_TIMEOUT_S)  # starts (or resets) the probe
        loaded = _small(url, keys["small"], "small", seconds, 1 + len(base))
        lag = httpx.get(url + serve.LAG_PATH, timeout=REQUEST_TIMEOUT_S).json()
        sent = [out.get(timeout=REQUEST_TIMEOUT_S * 2) for _ in procs]
        for p in procs:
            p.join(timeout=REQUEST_TIMEOUT_S)
        errors = [s["error"] for s in sent if s["error"]]
        if errors:
            raise BenchError("; ".join(errors))
    finally:
        server.stop()
    good, bad = sum(s["good"] for s in sent), sum(s["bad"] for s in sent)
    if not good or not bad:
        raise BenchError(f"round {round_no}: no big batch of each kind arrived ({good}, {bad})")
    return {
        "baseline_p50_ms": round(_p(base, 50), 2),
        "baseline_p99_ms": round(_p(base, 99), 2),
        "loaded_p50_ms": round(_p(loaded, 50), 2),
        "loaded_p99_ms": round(_p(loaded, 99), 2),
        "loaded_max_ms": round(max(loaded), 2),
        "server_loop_lag_p99_ms": round(lag["p99_ms"], 2),
        "server_loop_lag_max_ms": round(lag["max_ms"], 2),
        "small_requests": len(loaded),
        "good_batches": good,
        "bad_batches": bad,
        "batch_mb": round(sum(s["bytes"] for s in sent) / (good + bad) / 1e6, 2),
    }


def run(seconds: float = 8.0, rounds: int = 3) -> dict[str, Any]:
    """``rounds`` fresh servers; the median and range of each figure, and the p99 target."""
    results = []
    for k in range(rounds):
        with tempfile.TemporaryDirectory(prefix="sd-stall-") as tmp:
            results.append(one_round(Path(tmp), seconds, k))
            print(f"    round {k + 1}: {results[-1]}", flush=True)
    out: dict[str, Any] = {}
    for key in results[0]:
        values = [r[key] for r in results]
        out[key] = statistics.median(values)
        if key.endswith("_ms"):
            out[f"{key}_range"] = [min(values), max(values)]
    out["p99_ok"] = out["loaded_p99_ms"] < P99_TARGET_MS
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.batch_stall", description=__doc__)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    print(json.dumps(run(args.seconds, args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
