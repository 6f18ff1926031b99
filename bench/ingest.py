"""Ingest benchmark: stored reports/s through /report and /batch against a bare-parse ceiling.

One server process (bench/serve.py) on a fresh data directory serves every phase of a transport;
each phase is a separate load-generator process (bench/loadgen.py). The bare and /report phases
alternate (ABBA) so that drift in the machine's other load hits both alike. Afterwards the SQLite
file must hold every acknowledged report exactly once, or the benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench import serve
from bench.loadgen import Client

REPORT_PATH = "/api/metrics/report"
BATCH_PATH = "/api/metrics/batch"
RATIO_TARGET = 0.7
BATCH_TARGET = 20_000.0
BUSY_MACHINE_CORES = 0.3  # other processes' CPU during a phase above which figures are suspect


class BenchError(RuntimeError):
    """The benchmark could not run, or what it measured is wrong (lost or doubled reports)."""


def run_phase(
    server: serve.Handle,
    clients: list[Client],
    ca: str | None,
    path: str,
    *,
    batch: int = 0,
    store: bool = True,
    warmup: float,
    seconds: float,
    ids_out: Path | None = None,
) -> dict[str, Any]:
    """One load-generator process against ``path``; fails on any error response."""
    spec = {
        "port": server.info["port"],
        "path": path,
        "clients": [vars(c) for c in clients],
        "batch": batch,
        "store": store,
        "warmup_s": warmup,
        "measure_s": seconds,
        "ca": ca,
        "server_pid": server.info["pid"],
        "ids_out": str(ids_out) if ids_out else None,
    }
    limit = warmup + seconds + 30 + 20 + 15  # drain + connect + process start, then it is hung
    commits0 = server.commits() if store else 0
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.loadgen"],
            cwd=serve.ROOT,
            input=json.dumps(spec).encode(),
            capture_output=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"load generator for {path} hung for {limit:.0f} s; killed") from None
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        err = done.stderr.decode(errors="replace")[-2000:]
        raise BenchError(
            f"load generator for {path} failed (exit {done.returncode}):\n{err}"
        ) from None
    if "fatal" in result:
        raise BenchError(f"load generator for {path}: {result['fatal']}\n{server.log_tail()}")
    if result["errors"]:
        raise BenchError(
            f"{path}: errors {result['errors']}; first: {result['error_samples']}"
            f"\n{server.log_tail()}"
        )
    if store:
        result["commits"] = server.commits() - commits0
        result["reports_per_commit"] = result["acked_total"] / max(1, result["commits"])
    return result


def _stored_keys(conn: sqlite3.Connection, acked: list[bytes]) -> tuple[list[Any], list[Any]]:
    """(acked, stored) report identities in the form ``samples`` keeps them.

    ``report_id`` as 16 bytes, or ``rid`` (report_id folded to 64 bits by
    ``statusdash.server.models.report_key``); ([], []) if neither, and only counts are compared.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(samples)")}
    if "report_id" in columns:
        return acked, [bytes(r[0]) for r in conn.execute("SELECT report_id FROM samples")]
    if "rid" in columns:
        from statusdash.server import models

        fold = getattr(models, "report_key", None)
        if fold is not None:
            keys = [fold(uuid.UUID(bytes=a)) for a in acked]
            return keys, [r[0] for r in conn.execute("SELECT rid FROM samples")]
    return [], []


def verify_rows(db: Path, id_files: list[Path]) -> int:
    """Every acknowledged report is in ``samples`` exactly once, and nothing else is."""
    acked_ids: list[bytes] = []
    for f in id_files:
        raw = f.read_bytes()
        acked_ids += [raw[i : i + 16] for i in range(0, len(raw), 16)]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])
        acked, stored = _stored_keys(conn, acked_ids)
    finally:
        conn.close()
    acked_set, stored_set = set(acked), set(stored)
    problems = []
    if len(set(acked_ids)) != len(acked_ids):
        problems.append(f"{len(acked_ids) - len(set(acked_ids))} report_ids acknowledged twice")
    elif len(acked_set) != len(acked):
        problems.append("two acknowledged report_ids share a stored key; cannot check ids")
    if len(stored_set) != len(stored):
        problems.append(f"{len(stored) - len(stored_set)} reports stored twice")
    if missing := len(acked_set - stored_set):
        problems.append(f"{missing} acknowledged reports are not in the database")
    if extra := len(stored_set - acked_set):
        problems.append(f"{extra} stored reports were never acknowledged")
    if rows != len(acked_ids):
        problems.append(f"samples has {rows} rows for {len(acked_ids)} acknowledged reports")
    if problems:
        raise BenchError("row check FAILED: " + "; ".join(problems))
    return rows


def verify_in_fresh_process(db: Path, id_files: list[Path]) -> int:
    """:func:`verify_rows` in a new interpreter: it folds ids with the code the server ran."""
    cmd = [sys.executable, "-m", "bench.ingest", "--verify", str(db), *map(str, id_files)]
    try:
        done = subprocess.run(cmd, cwd=serve.ROOT, capture_output=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError("the row check took over 120 s; killed") from None
    if done.returncode != 0:
        raise BenchError(done.stderr.decode(errors="replace").strip()[-2000:])
    return int(done.stdout)


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one kind of phase, merged: rates over the total time, worst p99, CPU shares."""
    secs = sum(r["seconds"] for r in results)
    reqs = sum(r["requests_per_s"] * r["seconds"] for r in results)
    out: dict[str, Any] = {
        "requests_per_s": reqs / secs,
        "reports_per_s": sum(r["reports_per_s"] * r["seconds"] for r in results) / secs,
        "p50_ms": sorted(r["p50_ms"] for r in results)[len(results) // 2],
        "p99_ms": max(r["p99_ms"] for r in results),
        "rounds_req_per_s": [round(r["requests_per_s"]) for r in results],
        "body_bytes": results[0]["body_bytes"],
    }
    if all("commits" in r for r in results):
        acked = sum(r["acked_total"] for r in results)
        out["reports_per_commit"] = acked / max(1, sum(r["commits"] for r in results))
    if reqs and all(r["cpu_cores"] for r in results):
        for key in ("server", "server_main", "self", "machine"):
            cpu_s = sum(r["cpu_cores"].get(key, 0.0) * r["seconds"] for r in results)
            out[f"cpu_{key}_cores"] = cpu_s / secs
        out["server_cpu_us_per_request"] = out["cpu_server_cores"] * secs / reqs * 1e6
        other = out["cpu_machine_cores"] - out["cpu_server_cores"] - out["cpu_self_cores"]
        out["cpu_other_cores"] = max(0.0, other)
    return out


def _line(label: str, f: dict[str, Any], unit: str) -> str:
    rate = f["reports_per_s"] if unit == "reports/s" else f["requests_per_s"]
    text = (
        f"  {label:<32} {rate:>8,.0f} {unit:<9} p50 {f['p50_ms']:6.1f} ms p99 {f['p99_ms']:6.1f} ms"
    )
    if (cpu := f.get("server_cpu_us_per_request")) is not None:
        per = cpu / (f["reports_per_s"] / f["requests_per_s"]) if unit == "reports/s" else cpu
        text += f"  server {per:,.0f} us/{'report' if unit == 'reports/s' else 'req'}"
    if "reports_per_commit" in f:
        text += f"  {f['reports_per_commit']:,.1f}/commit"
    return text


def run_transport(
    tls: bool,
    *,
    clients: int = 50,
    warmup: float = 2.0,
    seconds: float = 8.0,
    rounds: int = 2,
    batch_clients: int = 20,
    batch_size: int = 500,
    synchronous: str = "FULL",
    gc_mode: str = "default",
    keep: bool = False,
) -> dict[str, Any]:
    """Every phase over one transport (plain HTTP + API keys, or mTLS), one server process."""
    name = "mtls" if tls else "http"
    work = Path(tempfile.mkdtemp(prefix=f"statusdash-bench-{name}-"))
    hosts = [f"bench-{i:03d}" for i in range(max(clients, batch_clients))]
    tag = f"[ingest/{name}]"
    phases: dict[str, list[dict[str, Any]]] = {"bare": [], "report": [], "batch": []}
    id_files: list[Path] = []
    try:
        creds, ca = serve.provision(work / "data", hosts, tls)
        server = serve.start(work, tls, synchronous, gc_mode, creds[0])
        info = server.info
        print(
            f"{tag} server pid {info['pid']} on 127.0.0.1:{info['port']} ({info['http']},"
            f" loop={info['loop']}, synchronous={synchronous}, gc={gc_mode}); {warmup:g} s"
            f" warm-up + {seconds:g} s measured per phase",
            flush=True,
        )
        try:
            order = [
                ("bare", "report") if r % 2 == 0 else ("report", "bare") for r in range(rounds)
            ]
            for kind in [k for pair in order for k in pair] + ["batch"]:
                ids = None if kind == "bare" else work / f"acked-{len(id_files)}.bin"
                if ids is not None:
                    id_files.append(ids)
                res = run_phase(
                    server,
                    creds[:batch_clients] if kind == "batch" else creds[:clients],
                    ca,
                    {"bare": serve.BARE_PATH, "report": REPORT_PATH, "batch": BATCH_PATH}[kind],
                    batch=batch_size if kind == "batch" else 0,
                    store=kind != "bare",
                    warmup=warmup,
                    seconds=seconds,
                    ids_out=ids,
                )
                phases[kind].append(res)
                print(f"{tag}   {kind:<6} {res['reports_per_s']:>8,.0f}/s", flush=True)
        finally:
            server.stop()
        rows = verify_in_fresh_process(work / "data" / "statusdash.db", id_files)
    except serve.ServerError as exc:
        raise BenchError(str(exc)) from None
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    b, r, bt = merge(phases["bare"]), merge(phases["report"]), merge(phases["batch"])
    ratio = r["reports_per_s"] / b["requests_per_s"]
    out: dict[str, Any] = {
        "transport": "mTLS, client certificates" if tls else "plain HTTP, API keys",
        "server": info["http"],
        "bare_req_per_s": b["requests_per_s"],
        "report_per_s": r["reports_per_s"],
        "ratio_report_to_bare": ratio,
        "ratio_ok": ratio >= RATIO_TARGET,
        "batch_reports_per_s": bt["reports_per_s"],
        "batch_ok": bt["reports_per_s"] >= BATCH_TARGET,
        "rows_verified": rows,
    }
    if "server_cpu_us_per_request" in b and "server_cpu_us_per_request" in r:
        out["server_us_per_bare_req"] = b["server_cpu_us_per_request"]
        out["server_us_per_report"] = r["server_cpu_us_per_request"]
        out["server_us_per_batched_report"] = bt["server_cpu_us_per_request"] / batch_size
        out["cpu_ratio"] = b["server_cpu_us_per_request"] / r["server_cpu_us_per_request"]
        out["other_load_cores"] = max(f.get("cpu_other_cores", 0.0) for f in (b, r, bt))
    out["detail"] = {"bare": b, "report": r, "batch": bt}
    print(_line("bare (json.loads, discard)", b, "req/s"))
    print(_line(f"POST {REPORT_PATH}", r, "reports/s"))
    print(_line(f"POST {BATCH_PATH} {batch_clients}x{batch_size}", bt, "reports/s"))
    print(f"  {'ratio report / bare':<32} {ratio:>8.2f}  (target >= {RATIO_TARGET})")
    if "cpu_ratio" in out:
        print(f"  {'ratio by server CPU per request':<32} {out['cpu_ratio']:>8.2f}")
    print(f"  {'rows verified, each acked once':<32} {rows:>8,}")
    if out.get("other_load_cores", 0.0) > BUSY_MACHINE_CORES:
        print(
            f"  WARNING: other processes used up to {out['other_load_cores']:.2f} cores during"
            " the run; rates are low and noisy (the us/request figures hold up better)"
        )
    return out


def run(
    tls: bool | None = None, seconds: float = 8.0, warmup: float = 2.0, rounds: int = 2, **kw: Any
) -> dict[str, Any]:
    """Plain HTTP, then mTLS (``tls=None``), or the one transport asked; figures per transport."""
    transports = [False, True] if tls is None else [tls]
    out: dict[str, Any] = {
        "clients": kw.get("clients", 50),
        "batch": f"{kw.get('batch_clients', 20)} clients x {kw.get('batch_size', 500)} reports",
        "load_avg_before": os.getloadavg()[0],
    }
    failed: list[str] = []
    for t in transports:
        name = "mtls" if t else "http"
        try:
            out[name] = run_transport(t, seconds=seconds, warmup=warmup, rounds=rounds, **kw)
        except BenchError as exc:
            print(f"[ingest/{name}] FAILED: {exc}", file=sys.stderr, flush=True)
            failed.append(f"{name}: {exc}")
    if failed:
        raise BenchError(" | ".join(failed))
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--verify"]:  # internal: verify_in_fresh_process
        try:
            print(verify_rows(Path(sys.argv[2]), [Path(f) for f in sys.argv[3:]]))
        except BenchError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    ap.add_argument("--tls", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=2, help="bare/report rounds (ABBA order)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--batch-clients", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    ap.add_argument(
        "--gc",
        choices=["default", "tuned"],
        default="default",
        dest="gc_mode",
        help="server GC experiment (bench/serve.py --gc); default: as the product ships",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp data dir")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    a = ap.parse_args(argv)
    tls = {"auto": None, "on": True, "off": False}[a.tls]
    try:
        out = run(
            tls,
            a.seconds,
            a.warmup,
            a.rounds,
            clients=a.clients,
            batch_clients=a.batch_clients,
            batch_size=a.batch_size,
            synchronous=a.synchronous,
            gc_mode=a.gc_mode,
            keep=a.keep,
        )
    except BenchError as exc:
        print(f"ingest benchmark FAILED: {exc}", file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
