"""Encoding values into segments and decoding them with the allow-list."""

from __future__ import annotations

import collections
import os
import pickle

import numpy as np
import pytest

from fed._serialization import codec
from fed._serialization.allowlist import DEFAULT_ALLOWED, RefusedValueError, merge_allowed


class Point:
    def __init__(self, x):
        self.x = x


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def round_trip(value, allowed=DEFAULT_ALLOWED):
    return codec.decode(codec.encode(value), allowed)


def test_plain_data_round_trips():
    value = {"a": [1, 2.5, "s", b"b", None, True], "t": (1, {2, 3}), "c": 3j,
             "o": collections.OrderedDict(k=1), "f": frozenset({1})}

    assert round_trip(value) == value


def test_numpy_arrays_travel_out_of_band_and_are_rebuilt_over_the_segment():
    array = np.arange(1000, dtype=np.float64).reshape(10, 100)

    segments = codec.encode({"w": array, "s": np.float32(2.5)})
    value = codec.decode(segments, DEFAULT_ALLOWED)

    assert len(segments) == 2 and segments[1].nbytes == array.nbytes
    np.testing.assert_array_equal(value["w"], array)
    assert value["s"] == np.float32(2.5) and value["w"].dtype == np.float64


def test_unknown_class_is_refused_with_instructions():
    with pytest.raises(RefusedValueError, match="serializing_allowed_list") as info:
        round_trip(Point(1))

    assert (info.value.module, info.value.name) == (__name__, "Point")


def test_allow_listed_class_crosses():
    allowed = merge_allowed({__name__: ["Point"]})

    assert round_trip(Point(7), allowed).x == 7


def test_code_execution_is_refused():
    with pytest.raises(RefusedValueError, match="posix.system|os.system|nt.system"):
        codec.decode([memoryview(pickle.dumps(Evil(), protocol=5))], DEFAULT_ALLOWED)
