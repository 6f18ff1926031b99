"""The chunk codec: one host's rows (a timestamp column + one column per series) as bytes.

A chunk is a header, a column table and one independently compressed block per column, so a
reader that wants one series decompresses one block (``decode_chunk(blob, want={sid})``).

Layout (all integers little-endian)::

    version:u8  crc32(table):u32  nrows:u32  ncols:u32
    table: ncols x (series_id:i64  length:u32  crc32(block):u32), the timestamp block first
           (series id ignored), then the columns in ascending series id; blocks follow in order.
    block: kind:u8, then per kind (see ``_encode_ints``)

A column block holds the presence of its rows as runs (present/absent lengths, starting with a
present run that may be empty) followed by the present values.  Values are stored as the
smallest signed fixed width (int8/16/32/64) that fits their first or second differences
(whichever compresses smaller; a shared GCD divided out), byte-plane shuffled, raw-deflated.
Decoding stays in C: ``zlib.decompress``, ``array.frombytes``, ``itertools.accumulate``, slices.

Every failure to decode (truncated, corrupted, wrong version) raises ``CodecError``; a checksum
per block and one over the table mean a damaged chunk is refused, never half-read.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import accumulate, repeat
from operator import le, sub

VERSION = 1
_HEAD = struct.Struct("<BIII")
_ENTRY = struct.Struct("<qII")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_LITTLE = sys.byteorder == "little"
# kind byte of an integer block: low 2 bits the transform, next 2 the width, bit 4 deflated
_RAW, _DELTA, _DOD = 0, 1, 2
_WIDTHS = ((1, "b", 2**7), (2, "h", 2**15), (4, "i", 2**31), (8, "q", 2**63))
_DEFLATED = 16
_LEVEL = 9
_SHUFFLE = True  # byte planes; module-level so bench/storage.py can measure without it
# presence kind of a column block
_ALL, _NONE, _RUNS = 0, 1, 2


class CodecError(ValueError):
    """A chunk that cannot be encoded (a value outside int64) or decoded (damaged, unknown)."""


def _check_i64(values: Sequence[int]) -> None:
    if values and (min(values) < _I64_MIN or max(values) > _I64_MAX):
        raise CodecError("a value is outside the int64 range")


def _width(lo: int, hi: int) -> int:
    """Index in ``_WIDTHS`` of the smallest signed width holding lo..hi; 4 if none does."""
    for i, (_, _, half) in enumerate(_WIDTHS):
        if -half <= lo and hi < half:
            return i
    return 4


def _pack(values: Sequence[int], w: int) -> bytes:
    """Fixed-width little-endian bytes, byte-plane shuffled (all low bytes first)."""
    size, code, _ = _WIDTHS[w]
    arr = array(code, values)
    if not _LITTLE:
        arr.byteswap()
    raw = arr.tobytes()
    if size == 1 or not _SHUFFLE:
        return raw
    return b"".join(raw[i::size] for i in range(size))


def _unpack(raw: bytes, w: int, n: int) -> array[int]:
    size, code, _ = _WIDTHS[w]
    if len(raw) != size * n:
        raise CodecError("a block's length does not match its row count")
    if size > 1 and _SHUFFLE:
        out = bytearray(len(raw))
        for i in range(size):
            out[i::size] = raw[i * n : (i + 1) * n]
        raw = bytes(out)
    arr = array(code)
    arr.frombytes(raw)
    if not _LITTLE:
        arr.byteswap()
    return arr


def _deflate(payload: bytes) -> bytes:
    return zlib.compress(payload, _LEVEL, wbits=-15)


def _inflate(raw: bytes) -> bytes:
    try:
        return zlib.decompress(raw, wbits=-15)
    except zlib.error as exc:
        raise CodecError(f"a block does not inflate: {exc}") from None


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _svarint(n: int) -> bytes:
    return _uvarint(n * 2 if n >= 0 else -n * 2 - 1)


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= len(buf) or shift > 70:
            raise CodecError("a varint runs past its block")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7


def _read_svarint(buf: bytes, pos: int) -> tuple[int, int]:
    z, pos = _read_uvarint(buf, pos)
    return (z >> 1) if not z & 1 else -((z + 1) >> 1), pos


def _diff(values: Sequence[int]) -> list[int]:
    return list(map(sub, values[1:], values))


def _candidate(transform: int, body: list[int], prefix: list[int]) -> bytes | None:
    """One way to store a run of integers: header varints + packed body, or None if it won't fit."""
    g = 0
    if body:
        lo, hi = min(body), max(body)
        if transform != _RAW:
            g = math.gcd(*body)
            if g > 1:
                body = [v // g for v in body]
                lo, hi = lo // g, hi // g
        w = _width(lo, hi)
        if w == 4:
            return None
    else:
        w = 0
    payload = _pack(body, w)
    kind = transform | (w << 2)
    packed = _deflate(payload) if len(payload) > 16 else payload
    if len(packed) < len(payload):
        kind |= _DEFLATED
    else:
        packed = payload
    head = bytes([kind]) + b"".join(_svarint(v) for v in prefix)
    if transform != _RAW:
        head += _uvarint(g)
    return head + packed


def _encode_ints(values: Sequence[int]) -> bytes:
    """The smallest of raw / first differences / second differences, as one block part."""
    best = _candidate(_RAW, list(values), [])
    if len(values) >= 2:
        d = _diff(values)
        for transform, body, prefix in (
            (_DELTA, d, [values[0]]),
            (_DOD, _diff(d), [values[0], d[0]]),
        ):
            cand = _candidate(transform, body, prefix)
            # second differences cost a second pass to decode: taken when 10 % smaller
            slack = 0.9 if transform == _DOD else 1.0
            if cand is not None and (best is None or len(cand) < len(best) * slack):
                best = cand
    if best is None:  # pragma: no cover - raw int64 always fits after _check_i64
        raise CodecError("no width fits")
    return best


def _decode_ints(buf: bytes, pos: int, n: int) -> list[int]:
    """The ``n`` integers stored from ``buf[pos:]`` (to the end of the block)."""
    if pos >= len(buf):
        raise CodecError("a block is truncated")
    kind = buf[pos]
    pos += 1
    transform, w = kind & 3, (kind >> 2) & 3
    if transform > _DOD or kind & ~0x1F:
        raise CodecError(f"unknown block kind {kind}")
    prefix: list[int] = []
    for _ in range(transform):
        v, pos = _read_svarint(buf, pos)
        prefix.append(v)
    g = 1
    if transform != _RAW:
        g, pos = _read_uvarint(buf, pos)
    body_n = max(n - transform, 0)
    raw = buf[pos:]
    if kind & _DEFLATED:
        raw = _inflate(raw)
    arr = _unpack(raw, w, body_n)
    if transform == _RAW:
        return list(arr)
    if n < transform:
        raise CodecError("a block has fewer rows than its transform needs")
    if g == 0:  # every difference zero: a constant, or a straight line
        if transform == _DELTA:
            return [prefix[0]] * n
        return list(accumulate(repeat(prefix[1], n - 1), initial=prefix[0]))
    body: Iterable[int] = arr if g == 1 else map(g.__mul__, arr)
    if transform == _DOD:
        body = accumulate(body, initial=prefix[1])
    return list(accumulate(body, initial=prefix[0]))


def _encode_column(col: Sequence[int | None]) -> bytes:
    present = [v for v in col if v is not None]
    if len(present) == len(col):
        _check_i64(present)
        return bytes([_ALL]) + _encode_ints(present)
    if not present:
        return bytes([_NONE])
    ints: list[int] = present
    _check_i64(ints)
    runs: list[int] = []
    state, run = True, 0
    for v in col:
        if (v is not None) is state:
            run += 1
        else:
            runs.append(run)
            state, run = not state, 1
    runs.append(run)
    runs_blob = _encode_ints(runs)
    head = bytes([_RUNS]) + _uvarint(len(runs)) + _uvarint(len(runs_blob))
    return head + runs_blob + _encode_ints(ints)


def _decode_column(block: bytes, n: int) -> list[int | None]:
    if not block:
        raise CodecError("an empty column block")
    kind = block[0]
    if kind == _ALL:
        return _decode_ints(block, 1, n)  # type: ignore[return-value]
    if kind == _NONE:
        return [None] * n
    if kind != _RUNS:
        raise CodecError(f"unknown column kind {kind}")
    nruns, pos = _read_uvarint(block, 1)
    rlen, pos = _read_uvarint(block, pos)
    runs = _decode_ints(block[: pos + rlen], pos, nruns)
    if sum(runs) != n or min(runs, default=0) < 0:
        raise CodecError("a column's runs do not add up to its rows")
    npresent = sum(runs[0::2])
    values = _decode_ints(block, pos + rlen, npresent)
    out: list[int | None] = [None] * n
    at = src = 0
    for i, r in enumerate(runs):
        if not i & 1:
            out[at : at + r] = values[src : src + r]
            src += r
        at += r
    return out


def encode_chunk(ts: Sequence[int], columns: Mapping[int, Sequence[int | None]]) -> bytes:
    """One chunk of ``ts`` (strictly increasing epoch ms) and ``columns`` (series id -> rows)."""
    n = len(ts)
    if any(map(le, ts[1:], ts)):
        raise CodecError("timestamps must be strictly increasing")
    _check_i64(ts)
    blocks = [_encode_ints(ts)]
    ids = sorted(columns)
    for sid in ids:
        if not _I64_MIN <= sid <= _I64_MAX:
            raise CodecError(f"series id {sid} is outside int64")
        col = columns[sid]
        if len(col) != n:
            raise CodecError(f"column {sid} has {len(col)} rows, the timestamps {n}")
        blocks.append(_encode_column(col))
    table = b"".join(
        _ENTRY.pack(sid, len(b), zlib.crc32(b)) for sid, b in zip([0, *ids], blocks, strict=True)
    )
    head_rest = struct.pack("<II", n, len(ids)) + table
    return struct.pack("<BI", VERSION, zlib.crc32(head_rest)) + head_rest + b"".join(blocks)


def _table(blob: bytes) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Row count and (series id, offset, length, crc) per block, the header checked."""
    if len(blob) < _HEAD.size:
        raise CodecError("a chunk shorter than its header")
    version, crc, n, ncols = _HEAD.unpack_from(blob)
    if version != VERSION:
        raise CodecError(f"unknown chunk version {version}")
    end = _HEAD.size + (ncols + 1) * _ENTRY.size
    if len(blob) < end or zlib.crc32(blob[5:end]) != crc:
        raise CodecError("a chunk's header is damaged")
    entries = []
    off = end
    for sid, length, bcrc in _ENTRY.iter_unpack(blob[_HEAD.size : end]):
        entries.append((sid, off, length, bcrc))
        off += length
    if off != len(blob):
        raise CodecError("a chunk's length does not match its table")
    return n, entries


def _block(blob: bytes, off: int, length: int, crc: int) -> bytes:
    block = blob[off : off + length]
    if zlib.crc32(block) != crc:
        raise CodecError("a chunk's block is damaged")
    return block


def chunk_columns(blob: bytes) -> list[int]:
    """The series ids stored in a chunk (ascending), without decoding any values."""
    return [sid for sid, *_ in _table(blob)[1][1:]]


def decode_chunk(
    blob: bytes, want: Collection[int] | None = None
) -> tuple[list[int], dict[int, list[int | None]]]:
    """Timestamps and columns of a chunk; with ``want``, only those columns (others not read)."""
    n, entries = _table(blob)
    _, off, length, crc = entries[0]
    ts = _decode_ints(_block(blob, off, length, crc), 0, n)
    wanted = None if want is None else set(want)
    cols: dict[int, list[int | None]] = {}
    for sid, off, length, crc in entries[1:]:
        if wanted is None or sid in wanted:
            cols[sid] = _decode_column(_block(blob, off, length, crc), n)
    return ts, cols


__all__ = ["CodecError", "chunk_columns", "decode_chunk", "encode_chunk"]
