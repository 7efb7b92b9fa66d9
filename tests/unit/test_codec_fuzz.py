"""Structure-aware fuzzing of fed's decoder: generated tagged trees, and valid values' trees mutated.

Whatever the tree, decoding returns a value or raises ``DecodeError`` — no other exception, no
crash — and a refusal's public text never holds what the payload held.
"""

from __future__ import annotations

import msgpack
from codec_trees import SECRET, mutate, trees, values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fed._serialization import codec, records
from fed._serialization.errors import DecodeError
from fed._serialization.policy import Policy


def segments_of(tree, oob: list[bytes]) -> list[memoryview]:
    out = bytearray()
    records.add(out, records.VALUE, msgpack.packb(tree, use_bin_type=True))
    return [memoryview(out), *(memoryview(bytearray(b)) for b in oob)]


def decodes_or_refuses(segments, copied=()) -> None:
    try:
        codec.decode(segments, Policy(), copied)
    except DecodeError as exc:
        assert SECRET not in str(exc) and "\n" not in str(exc)


fuzz = settings(max_examples=3000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@fuzz
@given(tree=trees, oob=st.lists(st.binary(max_size=64), max_size=3), copied=st.sampled_from([(), (1,), (1, 2)]))
def test_generated_trees_decode_or_are_refused(tree, oob, copied):
    decodes_or_refuses(segments_of(tree, oob), copied)


@fuzz
@given(data=st.data(), value=values)
def test_valid_values_with_one_node_mutated_decode_or_are_refused(data, value):
    encoded = codec.encode(value)
    tree = msgpack.unpackb(bytes(encoded.segments[0][records.HEAD:]), raw=False, strict_map_key=False,
                           ext_hook=msgpack.ExtType)
    mutated = mutate(tree, data.draw)

    decodes_or_refuses(segments_of(mutated, [bytes(s) for s in encoded.segments[1:]]), encoded.copied)


@fuzz
@given(value=values, flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6))
def test_valid_values_with_bytes_flipped_decode_or_are_refused(value, flips):
    data = bytearray(codec.encode(value).segments[0])
    for at, byte in flips:
        data[at % len(data)] = byte

    decodes_or_refuses([memoryview(data)])
