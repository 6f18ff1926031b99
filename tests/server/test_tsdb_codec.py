"""The chunk codec: decode(encode(x)) == x for any input, partial reads, damage refused."""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statusdash.server.tsdb.codec import CodecError, chunk_columns, decode_chunk, encode_chunk

I64_MIN, I64_MAX = -(2**63), 2**63 - 1
int64 = st.integers(I64_MIN, I64_MAX)
# values that make the codec pick each width and transform: small noise, repeats, extremes
value = st.one_of(
    int64,
    st.integers(-300, 300),
    st.sampled_from([I64_MIN, I64_MAX, 0, -1, 1, 2**31, -(2**31) - 1, 2**15, 4096 * 7]),
)


@st.composite
def chunks(draw: st.DrawFn) -> tuple[list[int], dict[int, list[int | None]]]:
    n = draw(st.integers(0, 40))
    steps = draw(
        st.lists(st.one_of(st.integers(1, 20_000), st.integers(1, 2**40)), min_size=n, max_size=n)
    )
    start = draw(st.integers(I64_MIN, 0))
    ts: list[int] = []
    t = start
    for s in steps:
        t += s
        ts.append(t)
    if ts and ts[-1] > I64_MAX:
        ts = [v - ts[-1] + I64_MAX for v in ts]
    ids = draw(st.lists(int64, max_size=6, unique=True))
    cols: dict[int, list[int | None]] = {}
    for sid in ids:
        style = draw(st.sampled_from(["any", "full", "none", "repeat", "ramp"]))
        if style == "none":
            cols[sid] = [None] * n
        elif style == "repeat":
            v = draw(value)
            cols[sid] = [v] * n
        elif style == "ramp":
            base, step = draw(st.integers(-(2**40), 2**40)), draw(st.integers(-5000, 5000))
            cols[sid] = [base + i * step for i in range(n)]
        elif style == "full":
            cols[sid] = draw(st.lists(value, min_size=n, max_size=n))
        else:
            cols[sid] = draw(st.lists(st.one_of(st.none(), value), min_size=n, max_size=n))
    return ts, cols


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks())
def test_any_chunk_round_trips(chunk: tuple[list[int], dict[int, list[int | None]]]) -> None:
    ts, cols = chunk
    blob = encode_chunk(ts, cols)
    assert decode_chunk(blob) == (ts, cols)
    assert chunk_columns(blob) == sorted(cols)


@settings(max_examples=100, deadline=None)
@given(chunks(), st.data())
def test_want_decodes_exactly_the_asked_columns(
    chunk: tuple[list[int], dict[int, list[int | None]]], data: st.DataObject
) -> None:
    ts, cols = chunk
    want = data.draw(st.sets(st.sampled_from(sorted(cols) or [0]) | int64, max_size=4))
    got_ts, got = decode_chunk(encode_chunk(ts, cols), want=want)
    assert got_ts == ts
    assert got == {sid: cols[sid] for sid in want if sid in cols}


def test_edges_round_trip() -> None:
    cases: list[tuple[list[int], dict[int, list[int | None]]]] = [
        ([], {}),
        ([], {1: [], 2: []}),
        ([5], {}),
        ([5], {1: [None]}),
        ([5], {1: [I64_MIN]}),
        ([I64_MIN, I64_MAX], {7: [I64_MAX, I64_MIN], 8: [None, None], 9: [I64_MIN, None]}),
        ([1, 2, 3], {I64_MIN: [I64_MAX] * 3, I64_MAX: [0, I64_MIN, I64_MAX]}),
        (list(range(0, 10_000, 10)), {3: [42] * 1000, 4: [None, 1] * 500}),
    ]
    for ts, cols in cases:
        assert decode_chunk(encode_chunk(ts, cols)) == (ts, cols)


def test_bad_input_is_refused_at_encode() -> None:
    with pytest.raises(CodecError, match="strictly increasing"):
        encode_chunk([1, 1], {})
    with pytest.raises(CodecError, match="rows"):
        encode_chunk([1, 2], {1: [0]})
    with pytest.raises(CodecError, match="int64"):
        encode_chunk([1], {1: [2**63]})
    with pytest.raises(CodecError, match="int64"):
        encode_chunk([1], {2**63: [0]})


def realistic() -> tuple[list[int], dict[int, list[int | None]]]:
    rnd = random.Random(7)
    n = 360
    ts = [1_700_000_000_000 + i * 10_000 + rnd.randint(0, 40) for i in range(n)]
    cols: dict[int, list[int | None]] = {
        sid: [rnd.randint(0, 10_000) for _ in range(n)] for sid in range(1, 40)
    }
    cols[50] = [None if rnd.random() < 0.3 else rnd.randint(0, 2**33) for _ in range(n)]
    return ts, cols


def test_every_truncation_and_bit_flip_raises_codec_error() -> None:
    ts, cols = realistic()
    blob = encode_chunk(ts, cols)
    for cut in [0, 1, 4, 12, 13, len(blob) // 2, len(blob) - 1]:
        with pytest.raises(CodecError):
            decode_chunk(blob[:cut])
    rnd = random.Random(1)
    for _ in range(300):
        pos = rnd.randrange(len(blob))
        bad = bytearray(blob)
        bad[pos] ^= 1 << rnd.randrange(8)
        with pytest.raises(CodecError):
            decode_chunk(bytes(bad))
    with pytest.raises(CodecError, match="version"):
        decode_chunk(bytes([99]) + blob[1:])


def test_damage_in_an_unread_block_does_not_hide_in_a_read_one() -> None:
    """With ``want``, a damaged block that is read raises; the table is always checked."""
    ts, cols = realistic()
    blob = bytearray(encode_chunk(ts, cols))
    blob[-3] ^= 0xFF  # the last block: column 50
    with pytest.raises(CodecError):
        decode_chunk(bytes(blob), want={50})
    assert decode_chunk(bytes(blob), want={1})[1] == {1: cols[1]}


def test_a_forged_checksum_still_cannot_make_wrong_lengths_pass() -> None:
    """A block whose crc is recomputed after damage is still checked for its shape."""
    blob = encode_chunk([1, 2, 3], {1: [1, 2, 3]})
    # rebuild the table with a block that claims 3 rows but holds 2 values of int8
    head = blob[: 5 + 8]
    block = bytes([0, 0]) + b"\x01\x02"  # ALL present, RAW int8 without deflate, 2 values
    ts_block = encode_chunk([1, 2, 3], {})[5 + 8 + 16 :]
    entries = (
        (0).to_bytes(8, "little", signed=True)
        + len(ts_block).to_bytes(4, "little")
        + zlib.crc32(ts_block).to_bytes(4, "little")
        + (1).to_bytes(8, "little", signed=True)
        + len(block).to_bytes(4, "little")
        + zlib.crc32(block).to_bytes(4, "little")
    )
    rest = head[5:] + entries
    forged = head[:1] + zlib.crc32(rest).to_bytes(4, "little") + rest + ts_block + block
    assert decode_chunk(forged, want=set())[0] == [1, 2, 3]
    with pytest.raises(CodecError):
        decode_chunk(forged)


def test_realistic_data_compresses() -> None:
    """Slowly moving scaled integers take far less than their 8 bytes a sample."""
    rnd = random.Random(3)
    n = 360
    ts = [1_700_000_000_000 + i * 10_000 for i in range(n)]
    level = 5000
    walk = []
    for _ in range(n):
        level += rnd.randint(-30, 30)
        walk.append(level)
    blob = encode_chunk(ts, {1: walk, 2: [100_000_000_000 + 4096 * i for i in range(n)]})
    assert len(blob) < n * 2
    assert decode_chunk(blob)[1][1] == walk
