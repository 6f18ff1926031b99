"""Storage benchmark of the chunk codec (issue 13): bytes per sample per tier, and query decode.

A typical host (``bench/hostgen.py``: ~90 series a report, ~117 a day with process churn) at
10 s for ``days`` days is cut into host chunks: raw rows in ``raw_chunk_h``-hour chunks, the
1-minute tier (min, max, sum, count per series per bucket) in day chunks, the 1-hour tier in day
chunks. Printed: bytes per raw sample of each tier, the total per host-day of the last (steady)
day against the 1 MB goal, the steady footprint at default retention, and the codec candidates
compared on the same data (bytes a sample, encode and decode microseconds a sample). Then the
query figure: one series (and 20 series) over 30 days decoded from 1-minute and 1-hour chunks.

    python -m bench.storage            # or: python -m bench --only storage
    python -m bench.storage --quick    # one day, fewer query rounds
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import lzma
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bench.hostgen import load_trace, series_values, typical_host_reports
from bench.varint_codec import varint_decode, varint_encode
from statusdash.server.tsdb import codec
from statusdash.server.tsdb.codec import decode_chunk, encode_chunk

GOAL_BYTES_PER_HOST_DAY = 1_000_000
DAY_MS = 86_400_000
COMPARE_CHUNKS = 1  # chunks of each tier the candidates are compared on (2 h of raw rows)
RETENTION = {"raw": 2, "1m": 30, "1h": 365}  # days, the defaults of settings.py
Cols = dict[int, list[int | None]]


def host_rows(days: float, seed: int) -> tuple[list[int], Cols, dict[tuple[str, str], int]]:
    """All rows of the typical host: timestamps (ms), series id -> column, the registry."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ids: dict[tuple[str, str], int] = {}
    ts: list[int] = []
    cols: Cols = {}
    for n, rep in enumerate(typical_host_reports(start, days * 24, seed)):
        ts.append(int(datetime.fromisoformat(rep["collected_at"]).timestamp() * 1000))
        for key, v in series_values(rep).items():
            sid = ids.setdefault(key, len(ids) + 1)
            col = cols.get(sid)
            if col is None:
                col = cols[sid] = [None] * n
            col.append(v)
        for col in cols.values():
            if len(col) == n:
                col.append(None)
    return ts, cols, ids


def rollup(ts: list[int], cols: Cols, bucket_ms: int) -> tuple[list[int], Cols]:
    """min/max/sum/count per series per bucket, under ids sid*4 + 0..3."""
    starts = sorted({t // bucket_ms * bucket_ms for t in ts})
    where = {b: i for i, b in enumerate(starts)}
    row_bucket = [where[t // bucket_ms * bucket_ms] for t in ts]
    out: Cols = {}
    nb = len(starts)
    for sid, col in cols.items():
        mn: list[int | None] = [None] * nb
        mx: list[int | None] = [None] * nb
        sm: list[int | None] = [None] * nb
        ct: list[int | None] = [None] * nb
        for b, v in zip(row_bucket, col, strict=True):
            if v is None:
                continue
            if ct[b] is None:
                mn[b] = mx[b] = sm[b] = v
                ct[b] = 1
            else:
                mn[b] = min(mn[b], v)  # type: ignore[type-var]
                mx[b] = max(mx[b], v)  # type: ignore[type-var]
                sm[b] += v  # type: ignore[operator]
                ct[b] += 1  # type: ignore[operator]
        out[sid * 4], out[sid * 4 + 1], out[sid * 4 + 2], out[sid * 4 + 3] = mn, mx, sm, ct
    return starts, out


def chunked(ts: list[int], cols: Cols, span_ms: int) -> Iterator[tuple[list[int], Cols]]:
    """Rows cut at multiples of ``span_ms``; a series absent from a whole chunk is left out."""
    i = 0
    while i < len(ts):
        end = ts[i] // span_ms * span_ms + span_ms
        j = i
        while j < len(ts) and ts[j] < end:
            j += 1
        part = {sid: c[i:j] for sid, c in cols.items() if any(v is not None for v in c[i:j])}
        yield ts[i:j], part
        i = j


def samples(cols: Cols) -> int:
    return sum(len(c) - c.count(None) for c in cols.values())


@contextmanager
def variant(name: str) -> Iterator[None]:
    """The codec with another compressor or without byte-plane shuffle, for the comparison."""
    saved = codec._deflate, codec._inflate, codec._SHUFFLE
    try:
        if name.endswith("noshuffle"):
            codec._SHUFFLE = False
        if name.startswith("fixed+lzma"):
            filters = [{"id": lzma.FILTER_LZMA2, "preset": 6}]
            codec._deflate = lambda b: lzma.compress(b, lzma.FORMAT_RAW, filters=filters)  # type: ignore[assignment]
            codec._inflate = lambda b: lzma.decompress(b, lzma.FORMAT_RAW, filters=filters)  # type: ignore[assignment]
        if name.startswith("fixed+zstd"):
            # measured only, where installed: neither the codec nor the project depends on it
            zstandard: Any = importlib.import_module("zstandard")
            c, d = zstandard.ZstdCompressor(level=19), zstandard.ZstdDecompressor()
            codec._deflate, codec._inflate = c.compress, d.decompress
        yield
    finally:
        codec._deflate, codec._inflate, codec._SHUFFLE = saved


CANDIDATES: list[tuple[str, Callable[..., bytes], Callable[[bytes], Any]]] = [
    ("varint+zlib (a)", varint_encode, varint_decode),
    ("fixed+zlib noshuffle (b)", encode_chunk, decode_chunk),
    ("fixed+zlib shuffle (b, chosen)", encode_chunk, decode_chunk),
    ("fixed+lzma shuffle (c)", encode_chunk, decode_chunk),
    ("fixed+zstd19 shuffle (c)", encode_chunk, decode_chunk),
]


def measure(name: str, enc: Callable[..., bytes], dec: Callable[[bytes], Any], parts: list[Any]):  # type: ignore[no-untyped-def]
    """Bytes, encode and decode seconds of one candidate over chunks (checked to round-trip)."""
    with variant(name):
        t0 = time.perf_counter()
        blobs = [enc(ts, cols) for ts, cols in parts]
        t1 = time.perf_counter()
        decoded = [dec(b) for b in blobs]
        t2 = time.perf_counter()
    for (ts, cols), got in zip(parts, decoded, strict=True):
        if got != (ts, cols):
            raise AssertionError(f"{name} does not round-trip")
    return sum(map(len, blobs)), t1 - t0, t2 - t1


def tiers(ts: list[int], cols: Cols, raw_chunk_h: float) -> dict[str, list[Any]]:
    """The chunks of each tier for these rows."""
    t1m, c1m = rollup(ts, cols, 60_000)
    t1h, c1h = rollup(ts, cols, 3_600_000)
    return {
        "raw": list(chunked(ts, cols, int(raw_chunk_h * 3_600_000))),
        "1m": list(chunked(t1m, c1m, DAY_MS)),
        "1h": list(chunked(t1h, c1h, DAY_MS)),
    }


def query_bench(
    parts_1m: list[Any], parts_1h: list[Any], sids: list[int], rounds: int
) -> dict[str, Any]:
    """p50/p99 ms to decode 1 and 20 series over 30 days (the day's chunks repeated to 30)."""
    blobs_1m = [encode_chunk(ts, c) for ts, c in parts_1m]
    blobs_1m = (blobs_1m * 30)[:30]
    one_1h = [encode_chunk(ts, c) for ts, c in parts_1h]
    blobs_1h = (one_1h * 30)[:30]
    out: dict[str, Any] = {}
    for label, blobs in (("1m", blobs_1m), ("1h", blobs_1h)):
        for k in (1, 20):
            want = {sid * 4 + j for sid in sids[:k] for j in range(4)}
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                for b in blobs:
                    decode_chunk(b, want)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            out[f"{label}_{k}series_30d_ms"] = {
                "p50": round(statistics.median(times), 2),
                "p99": round(p99, 2),
            }
    out["goal_1series_p99_ok"] = out["1m_1series_30d_ms"]["p99"] <= 50
    out["goal_20series_p99_ok"] = out["1m_20series_30d_ms"]["p99"] <= 100
    return out


def run(days: float = 3, raw_chunk_h: float = 2, rounds: int = 30, seed: int = 1) -> dict[str, Any]:
    """The storage figures (see the module docstring)."""
    trace = load_trace()
    ts, cols, ids = host_rows(days, seed)
    last_day = int(days) - 1 if days >= 1 else 0
    day_lo = ts[0] // DAY_MS * DAY_MS + last_day * DAY_MS
    lo = next(i for i, t in enumerate(ts) if t >= day_lo)
    hi = next((i for i, t in enumerate(ts) if t >= day_lo + DAY_MS), len(ts))
    day_ts = ts[lo:hi]
    day_cols = {s: c[lo:hi] for s, c in cols.items() if any(v is not None for v in c[lo:hi])}
    raw_samples = samples(day_cols)
    parts = tiers(day_ts, day_cols, raw_chunk_h)
    per_day = {name: sum(len(encode_chunk(t, c)) for t, c in p) for name, p in parts.items()}
    total = sum(per_day.values())
    figures: dict[str, Any] = {
        "data": "trace replay" if trace else "synthetic (no trace)",
        "series_per_report": round(samples(day_cols) / len(day_ts), 1),
        "series_per_day": len(day_cols),
        "raw_samples_per_day": raw_samples,
        "bytes_per_raw_sample": {k: round(v / raw_samples, 3) for k, v in per_day.items()},
        "bytes_per_host_day": {**per_day, "total": total},
        "goal_ratio": round(total / GOAL_BYTES_PER_HOST_DAY, 3),
        "goal_ok": total <= GOAL_BYTES_PER_HOST_DAY,
        "steady_footprint_mb": round(sum(per_day[k] * d for k, d in RETENTION.items()) / 1e6, 2),
    }
    compare: dict[str, Any] = {}
    for name, enc, dec in CANDIDATES:
        if "zstd" in name and importlib.util.find_spec("zstandard") is None:
            compare[name] = "not installed (pip install zstandard==0.25.0 to compare)"
            continue
        row: dict[str, Any] = {}
        for tier in ("raw", "1m"):
            sample = parts[tier][:COMPARE_CHUNKS]  # lzma takes ~0.5 ms a sample to encode
            size, te, td = measure(name, enc, dec, sample)
            n = sum(samples(cc) for _, cc in sample)
            row[f"{tier}_B_per_sample"] = round(size / n, 3)
            row[f"{tier}_enc_us"] = round(te / n * 1e6, 2)
            row[f"{tier}_dec_us"] = round(td / n * 1e6, 3)
        compare[name] = row
        print(f"    {name:32} {row}", flush=True)
    figures["candidates"] = compare
    sids = sorted(
        {
            ids[k]
            for k in ids
            if k[0]
            in ("disk.mount.percent", "cpu.core.percent", "temps.celsius", "service.latency_ms")
        }
    )
    figures["query"] = query_bench(parts["1m"], parts["1h"], sids, rounds)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__)
    ap.add_argument("--days", type=float, default=3)
    ap.add_argument("--raw-chunk-h", type=float, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    figs = run(
        days=1 if args.quick else args.days,
        raw_chunk_h=args.raw_chunk_h,
        rounds=10 if args.quick else 30,
    )
    for key, val in figs.items():
        print(f"{key}: {val}")


if __name__ == "__main__":
    main()
