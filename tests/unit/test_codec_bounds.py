"""What decoding a payload can make a receiver hold is within ``codec.holding_bound``, which the
receiver counts against ``max_buffered_bytes`` before it takes the push.

The payloads are the worst cases per byte: the smallest encodings of the largest objects."""

from __future__ import annotations

import tracemalloc

import msgpack
import numpy as np
import pytest

from fed._serialization import codec, records, tags
from fed._serialization.policy import Policy

M = tags.EXTS
N = 20_000


def records_of(items: list) -> list[memoryview]:
    """One list of ``items``, in records of at most DOC_MAX bytes (as the encoder would split it)."""
    out = bytearray()
    records.add(out, records.OPEN_LIST)
    step = 1000
    for i in range(0, len(items), step):
        records.add(out, records.VALUES, msgpack.packb(items[i:i + step], use_bin_type=True))
    records.add(out, records.CLOSE)
    return [memoryview(out)]


WORST = {
    "empty_maps": [{}] * N,
    "empty_lists": [[]] * N,
    "one_element_sets": [[M[tags.SET], None]] * N,
    "empty_frozensets": [[M[tags.FROZENSET], i] for i in range(N)],
    "floats": [0.5] * N,
    "short_strs": ["ab"] * N,
    "tuples": [[M[tags.TUPLE], None]] * N,
    "dicts_of_ints": [[M[tags.DICT], i, None] for i in range(N)],
    "decimals": [[M[tags.DECIMAL], "1"]] * N,
    "fractions": [[M[tags.FRACTION], 1, 3]] * N,
    "complexes": [[M[tags.COMPLEX], 0.5, 0.5]] * N,
    "datetimes": [[M[tags.DATETIME], 2000, 1, 1, 0, 0, 0, 0, 0, None]] * N,
    "timedeltas": [[M[tags.TIMEDELTA], 1, 1, 1]] * N,
    "uuids": [[M[tags.UUID], b"\x00" * 16]] * N,
    "empty_arrays": [[M[tags.NDARRAY], "|u1", [0], False, b""]] * N,
    "small_arrays": [[M[tags.NDARRAY], "|u1", [1], False, b"\x00"]] * N,
    "numpy_scalars": [[M[tags.NUMPY_SCALAR], "|u1", b"\x00"]] * N,
    "ranges": [[M[tags.RANGE], 0, 1, 1]] * N,
    "deques": [[M[tags.DEQUE], None]] * N,
    "counters": [[M[tags.COUNTER]]] * N,
    "ordered_dicts": [[M[tags.ORDERED_DICT]]] * N,
    "bytearrays": [[M[tags.BYTEARRAY], b""]] * N,
    "big_ints": [[M[tags.BIG_INT], b"\x01" * 9]] * N,
    "remote_errors": [[M[tags.REMOTE_ERROR], "a", "E", None]] * N,
}


def decoding_peak(segments, copied=()) -> int:
    """The most memory decoding ``segments`` allocated at once (tracemalloc)."""
    tracemalloc.start()
    try:
        codec.decode(segments, Policy(), copied)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", sorted(WORST))
def test_what_a_payload_decodes_to_stays_within_the_bound_the_receiver_counts(name):
    segments = records_of(WORST[name])
    bound = codec.holding_bound([s.nbytes for s in segments])

    peak = decoding_peak(segments)

    assert len(codec.decode(segments, Policy())) == N
    assert peak <= bound, f"{name}: {peak / segments[0].nbytes:.1f} bytes per in-band byte"


def test_long_str_and_bytes_out_of_band_stay_within_the_bound():
    encoded = codec.encode(["é" * 3_000_000, b"x" * 5_000_000, bytearray(2_000_000)])

    peak = decoding_peak(encoded.segments, encoded.copied)

    assert peak <= codec.holding_bound([s.nbytes for s in encoded.segments], encoded.copied)


def test_arrays_out_of_band_cost_nothing_beyond_their_segment():
    encoded = codec.encode([np.ones(1_000_000) for _ in range(4)])
    sizes = [s.nbytes for s in encoded.segments]

    peak = decoding_peak(encoded.segments, encoded.copied)

    assert peak <= codec.holding_bound(sizes, encoded.copied) < sum(sizes) // 100
