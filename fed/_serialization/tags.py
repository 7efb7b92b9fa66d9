"""The tags of fed's codec: which Python type a tagged msgpack array stands for (docs/wire.md).

A tagged value is a msgpack array whose first element is a *marker*: an ext of length 0 whose
ext type is the tag. Plain lists are msgpack arrays that do not start with a marker; dicts whose
keys are all ``str`` or ``bytes`` are msgpack maps. Every other type is one of the tags below.
"""

from __future__ import annotations

import msgpack

TUPLE = 1
SET = 2
FROZENSET = 3
DICT = 4          # keys not all str/bytes: k1, v1, k2, v2, ...
ORDERED_DICT = 5  # k1, v1, ...
COUNTER = 6       # k1, v1, ...
DEQUE = 7         # maxlen (int or None), items...
BYTEARRAY = 8     # bin, or the index of an out-of-band segment
BIG_INT = 9       # signed little-endian bytes (ints outside msgpack's 64 bits)
COMPLEX = 10      # real, imag
DECIMAL = 11      # str
FRACTION = 12     # numerator, denominator
DATETIME = 13     # year, month, day, hour, minute, second, microsecond, fold, tz (None or TIMEZONE)
DATE = 14         # year, month, day
TIME = 15         # hour, minute, second, microsecond, fold, tz
TIMEDELTA = 16    # days, seconds, microseconds
TIMEZONE = 17     # offset (TIMEDELTA), name (str or None)
UUID = 18         # 16 bytes
RANGE = 19        # start, stop, step
SLICE = 20        # start, stop, step (int or None)
ELLIPSIS = 21     # nothing
NDARRAY = 22      # dtype str, shape, fortran order (bool), data (bin, or segment index)
NUMPY_SCALAR = 23 # dtype str, bin
TENSOR = 24       # torch dtype name, shape (None unless data is raw bytes), requires_grad, NDARRAY
REMOTE_ERROR = 25 # src party, error type, cause (str or None)
REGISTERED = 26   # registered name, parts
PICKLED = 27      # pickle stream (bytes), objects its persistent ids name (list)
BYTES = 28        # index of an out-of-band segment
STR = 29          # index of an out-of-band segment (UTF-8, surrogates passed)

NAMES = {value: name for name, value in globals().items() if name.isupper() and isinstance(value, int)}


class Marker:
    """The decoded marker of one tag; only ever the first element of a tagged array."""

    __slots__ = ("tag",)

    def __init__(self, tag: int) -> None:
        self.tag = tag

    def __repr__(self) -> str:
        return f"<fed marker {NAMES.get(self.tag, self.tag)}>"


MARKERS = {tag: Marker(tag) for tag in NAMES}
EXTS = {tag: msgpack.ExtType(tag, b"") for tag in NAMES}
