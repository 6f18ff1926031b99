"""Candidate (a) of the chunk-codec comparison in bench/storage.py: zigzag varints, then zlib.

Timestamps as delta-of-delta, values as deltas, both zigzag + LEB128 varints in pure Python, each
column (its presence runs, then its values) deflated on its own. Kept only to measure against the
codec in ``statusdash.server.tsdb.codec``; no checksums, not for storage.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence


def _put(out: bytearray, n: int) -> None:
    z = n * 2 if n >= 0 else -n * 2 - 1
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _get_all(buf: bytes) -> list[int]:
    vals: list[int] = []
    n = shift = 0
    for b in buf:
        n |= (b & 0x7F) << shift
        if b < 0x80:
            vals.append((n >> 1) if not n & 1 else -((n + 1) >> 1))
            n = shift = 0
        else:
            shift += 7
    return vals


def _deltas(values: Sequence[int], out: bytearray) -> None:
    prev = 0
    for v in values:
        _put(out, v - prev)
        prev = v


def varint_encode(ts: Sequence[int], columns: Mapping[int, Sequence[int | None]]) -> bytes:
    blocks = []
    tsb = bytearray()
    prev = prev_d = 0
    for t in ts:
        d = t - prev
        _put(tsb, d - prev_d)
        prev, prev_d = t, d
    blocks.append(zlib.compress(bytes(tsb), 9))
    for _sid, col in sorted(columns.items()):
        b = bytearray()
        runs, state, run = [], True, 0
        for v in col:
            if (v is not None) is state:
                run += 1
            else:
                runs.append(run)
                state, run = not state, 1
        runs.append(run)
        _put(b, len(runs))
        for r in runs:
            _put(b, r)
        _deltas([v for v in col if v is not None], b)
        blocks.append(zlib.compress(bytes(b), 9))
    ids = sorted(columns)
    head = struct.pack("<II", len(ts), len(ids)) + b"".join(
        struct.pack("<qI", sid, len(bl)) for sid, bl in zip([0, *ids], blocks, strict=True)
    )
    return head + b"".join(blocks)


def varint_decode(blob: bytes) -> tuple[list[int], dict[int, list[int | None]]]:
    n, ncols = struct.unpack_from("<II", blob)
    off = 8 + 12 * (ncols + 1)
    entries = []
    for sid, length in struct.iter_unpack("<qI", blob[8:off]):
        entries.append((sid, blob[off : off + length]))
        off += length
    ts: list[int] = []
    prev = prev_d = 0
    for dd in _get_all(zlib.decompress(entries[0][1])):
        prev_d += dd
        prev += prev_d
        ts.append(prev)
    cols: dict[int, list[int | None]] = {}
    for sid, block in entries[1:]:
        vals = _get_all(zlib.decompress(block))
        nruns = vals[0]
        runs, deltas = vals[1 : 1 + nruns], vals[1 + nruns :]
        col: list[int | None] = []
        acc = 0
        it = iter(deltas)
        for i, r in enumerate(runs):
            if i & 1:
                col.extend([None] * r)
            else:
                for _ in range(r):
                    acc += next(it)
                    col.append(acc)
        cols[sid] = col
    del n
    return ts, cols
