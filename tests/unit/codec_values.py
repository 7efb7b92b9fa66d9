"""Values of every type fed's codec carries, and a comparison that checks types all the way down
(shared by the codec's unit tests and the cross-party type tests)."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import math
import uuid

import numpy as np

from fed._exceptions import FedRemoteError

TZ = datetime.timezone(datetime.timedelta(hours=-3, minutes=-30), "Newfoundland-ish")
VALUES = {
    "none": None, "true": True, "false": False, "zero": 0, "int": -12345, "int64_max": 2**63 - 1,
    "uint64_max": 2**64 - 1, "int64_min": -2**63, "big_int": 3**200, "big_negative": -(2**64),
    "float": 1.5, "inf": float("inf"), "negative_zero": -0.0, "complex": 3 - 4j,
    "str": "héllo \U0001f600", "empty_str": "", "surrogate_str": "a\ud800b", "long_str": "ab" * 40_000,
    "bytes": b"\x00\xff", "long_bytes": bytes(range(256)) * 1000, "bytearray": bytearray(b"xyz"),
    "long_bytearray": bytearray(300_000), "list": [1, "a", [2.0, None]], "empty_list": [], "tuple": (1, (2, 3)),
    "empty_tuple": (), "dict_str_keys": {"a": 1, "b": {"c": [1]}}, "dict_bytes_keys": {b"k": 1},
    "dict_other_keys": {1: "a", (1, 2): "b", None: 3, 2.5: 4, frozenset({1}): 5},
    "set": {1, "a", (2, 3)}, "empty_set": set(), "frozenset": frozenset({1.5, "x"}),
    "ordered_dict": collections.OrderedDict([("b", 1), ("a", 2)]), "counter": collections.Counter("mississippi"),
    "deque": collections.deque([1, 2, 3]), "bounded_deque": collections.deque([1, 2], maxlen=5),
    "decimal": decimal.Decimal("-1.2500"), "decimal_nan": decimal.Decimal("sNaN"),
    "decimal_inf": decimal.Decimal("-Inf"),
    "fraction": fractions.Fraction(-7, 3), "datetime": datetime.datetime(2026, 12, 1, 9, 8, 7, 654321),
    "datetime_utc": datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc),
    "datetime_tz_fold": datetime.datetime(2026, 1, 2, 1, 30, tzinfo=TZ, fold=1), "date": datetime.date(1999, 12, 31),
    "time": datetime.time(23, 59, 59, 1, tzinfo=TZ),
    "timedelta": datetime.timedelta(days=-2, seconds=3, microseconds=4),
    "timezone": TZ, "utc": datetime.timezone.utc, "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "range": range(-5, 100, 7), "slice": slice(None, 10, -1), "ellipsis": Ellipsis,
    "remote_error": FedRemoteError("alice", "ValueError", "boom"),
    "nested": {"layers": [(np.float32(1.0), {"w": [1, 2]}), collections.deque([decimal.Decimal(1)])]},
}
ARRAYS = {
    "float64": np.arange(12, dtype=np.float64).reshape(3, 4),
    "float32_fortran": np.asfortranarray(np.ones((5, 7), np.float32)),
    "int8": np.array([-1, 2], np.int8), "uint64": np.array([2**64 - 1], np.uint64), "bool": np.array([True, False]),
    "complex128": np.array([1 + 2j]), "float16": np.array([1.5], np.float16), "big_endian": np.arange(5, dtype=">i4"),
    "datetime64": np.array(["2026-12-01", "NaT"], "datetime64[D]"), "timedelta64": np.array([5], "timedelta64[ms]"),
    "unicode": np.array(["ab", "\U0001f600"]), "bytes": np.array([b"x", b"yz"]), "zero_d": np.array(3.5),
    "empty": np.zeros((0, 3)), "strided": np.arange(100.0).reshape(10, 10)[::2, 1::3],
    "large": np.arange(2**17, dtype=np.float64),
}
SCALARS = [np.float64(1.5), np.float32(-2), np.int64(7), np.uint8(255), np.bool_(True), np.complex64(1j),
           np.datetime64("2026-12-01T10:00"), np.timedelta64(3, "s"), np.str_("hé"), np.bytes_(b"ab")]


def same(a, b) -> bool:
    """Equal and of the same type, all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple, collections.deque)):
        return (len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
                and getattr(a, "maxlen", 0) == getattr(b, "maxlen", 0))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, decimal.Decimal) and a.is_nan():
        return b.is_nan() and a.is_snan() == b.is_snan()
    if isinstance(a, FedRemoteError):
        return (a.src_party, a.error_type, a.cause) == (b.src_party, b.error_type, b.cause)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b and (not isinstance(a, datetime.datetime) or a.fold == b.fold)
