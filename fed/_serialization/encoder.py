"""A value to fed's wire form: tagged msgpack documents of bounded size, plus out-of-band segments.

Segment 0 holds the *records* (see ``records``): each a msgpack document of at most
``records.DOC_MAX`` bytes, or the opening or closing of a list or map too large for one document.
Segments 1.. are large buffers — array data, long bytes and str — sent without a copy. What is
carried, and how, is in ``tags`` and docs/wire.md.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import threading
import uuid
from typing import Any, NamedTuple

import msgpack
import numpy as np

from fed._exceptions import FedRemoteError
from fed._serialization import arrays, records, restricted, tags
from fed._serialization.errors import EncodeError
from fed._serialization.registry import Types

MAX_DEPTH = 100
MAX_INT_BYTES = 8192
MAX_DECIMAL_CHARS = 4096
# Longer bytes and str travel out of band: inside the records they would count as structure,
# which the receiver reserves ``decoder.MEMORY_PER_INBAND_BYTE`` times over.
INLINE_MAX = arrays.INLINE_MAX  # bytes, and characters of a str
_NUMBERS = frozenset({type(None), bool, int, float})
_KEYS = frozenset({str, bytes})
_LEAVES = _NUMBERS | _KEYS
_E = tags.EXTS
_TUPLE = _E[tags.TUPLE]


class Encoder:
    """Encodes one value (use ``encode``)."""

    def __init__(self, types: Types, by_value: bool = False) -> None:
        self._types = types
        self._by_value = by_value
        self.segments: list[memoryview] = [memoryview(b"")]
        self.copied: list[int] = []  # segments the receiver copies out (bytes, str) rather than views
        self._packer = _packer()

    def oob(self, view: memoryview, copied: bool = False) -> int | None:
        """Add ``view`` as a segment of its own; its index, or None when a value has all the
        segments it may have (the caller sends the buffer inline)."""
        if len(self.segments) >= records.MAX_SEGMENTS:
            return None
        self.segments.append(view)
        if copied:
            self.copied.append(len(self.segments) - 1)
        return len(self.segments) - 1

    def tree(self, obj: Any, depth: int = 0) -> Any:
        """``obj`` as msgpack-native values and tagged arrays (containers of plain numbers as they are)."""
        t = type(obj)
        if t in _NUMBERS:
            return obj
        if t is str:
            if len(obj) <= INLINE_MAX:
                return obj
            index = self.oob(memoryview(obj.encode("utf-8", "surrogatepass")), copied=True)
            return obj if index is None else [_E[tags.STR], index]
        if t is bytes:
            index = self.oob(memoryview(obj), copied=True) if len(obj) > INLINE_MAX else None
            return obj if index is None else [_E[tags.BYTES], index]
        if depth >= MAX_DEPTH:
            raise EncodeError(f"the value nests more than {MAX_DEPTH} levels deep (or contains itself)")
        if t is list:
            return obj if _plain(obj) else [self.tree(x, depth + 1) for x in obj]
        if t is dict:
            return self._dict(obj, depth)
        if t is tuple:
            if len(obj) > 16:
                return [_TUPLE, *(obj if _plain(obj) else (self.tree(x, depth + 1) for x in obj))]
            out = [_TUPLE]
            for x in obj:  # small tuples are common: leaves are checked here, without a call
                tx = type(x)
                out.append(x if tx in _NUMBERS or tx is str and len(x) <= INLINE_MAX else self.tree(x, depth + 1))
            return out
        if t is np.ndarray:
            return arrays.array_to_wire(obj, self.oob)
        encode = _BY_TYPE.get(t)
        if encode is not None:
            return encode(self, obj, depth + 1)
        return self._other(obj, depth + 1)

    def _items(self, tag: int, items: Any, depth: int) -> list:
        return [_E[tag], *(self.tree(x, depth) for x in items)]

    def _pairs(self, tag: int, mapping: Any, depth: int) -> list:
        out = [_E[tag]]
        for key, value in mapping.items():
            out.append(self.tree(key, depth))
            out.append(self.tree(value, depth))
        return out

    def _dict(self, obj: dict, depth: int) -> Any:
        keys = set(map(type, obj))
        if keys <= _KEYS and max(map(len, obj), default=0) <= INLINE_MAX:
            if set(map(type, obj.values())) <= _NUMBERS:
                return obj
            return {k: self.tree(v, depth + 1) for k, v in obj.items()}
        return self._pairs(tags.DICT, obj, depth + 1)

    def _other(self, obj: Any, depth: int) -> Any:
        entry = self._types.by_class.get(type(obj))
        if entry is not None:
            return [_E[tags.REGISTERED], entry.name, self.tree(entry.to_wire(obj), depth)]
        if isinstance(obj, np.generic) and type(obj).__module__ == "numpy":
            return arrays.scalar_to_wire(obj)
        if arrays.is_tensor(obj):
            return arrays.tensor_to_wire(obj, self.oob)
        if self._by_value:  # allow_unsafe_deserialization: anything else as Ray would move it
            stream, carried = restricted.dumps_by_value(obj, lambda x: self._carried(x, depth))
            return [_E[tags.PICKLED], self.tree(stream, depth), carried]
        if isinstance(obj, np.ndarray):
            raise EncodeError(f"{type(obj).__module__}.{type(obj).__qualname__} (a numpy array subclass) is not "
                              "carried: send np.asarray(x), plus what else you need as separate values")
        if isinstance(obj, datetime.tzinfo):
            raise EncodeError(f"time zones of type {type(obj).__qualname__} are not carried: use UTC or a "
                              "fixed-offset datetime.timezone")
        stream, carried = restricted.dumps(obj, lambda x: self._carried(x, depth))
        return [_E[tags.PICKLED], self.tree(stream, depth), carried]

    def _carried(self, obj: Any, depth: int) -> Any:
        """Objects inside a pickled object that the codec carries itself (persistent ids), else None."""
        t = type(obj)
        if t is np.ndarray or t is FedRemoteError or t in self._types.by_class or arrays.is_tensor(obj) or (
                isinstance(obj, np.generic) and t.__module__ == "numpy"):
            return self.tree(obj, depth + 1)
        return None

    def records(self, tree: Any) -> memoryview:
        """Segment 0: ``tree`` in records of at most ``records.DOC_MAX`` bytes each."""
        out = bytearray()
        doc = self._packer.pack(tree)
        if len(doc) <= records.DOC_MAX:
            records.add(out, records.VALUE, doc)
        else:
            self._split(tree, out, doc_size=len(doc))
        return memoryview(out)

    def _split(self, tree: Any, out: bytearray, doc_size: int) -> None:
        if type(tree) is list:
            records.add(out, records.OPEN_LIST)
            items = tree
        elif type(tree) is dict:
            records.add(out, records.OPEN_MAP)
            items = [x for pair in tree.items() for x in pair]
        else:  # a long str or bytes left inline: the value has used all the segments it may have
            raise EncodeError(f"the value holds more than {records.MAX_SEGMENTS} long strings, bytes and arrays: "
                              "send it in several values, or join them (one array, one bytes)")
        step = max(1, len(items) * records.DOC_MAX // (2 * doc_size))
        i = 0
        while i < len(items):
            batch = items[i:i + step]
            doc = self._packer.pack(batch)
            if len(doc) <= records.DOC_MAX:
                records.add(out, records.VALUES, doc)
                i += len(batch)
            elif step > 1:
                step //= 2
            else:
                self._split(items[i], out, doc_size=len(doc))
                i += 1
        records.add(out, records.CLOSE)


_local = threading.local()


def _packer() -> msgpack.Packer:
    """This thread's msgpack packer (a packer keeps a buffer, so threads do not share one)."""
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = msgpack.Packer(use_bin_type=True, strict_types=True,
                                                unicode_errors="surrogatepass", default=_big_int, autoreset=True)
    return packer


def _plain(items: Any) -> bool:
    """A list or tuple of None, bools, ints, floats and short str/bytes only: msgpack takes it as it is."""
    kinds = set(map(type, items))
    if kinds <= _NUMBERS:
        return True
    if not kinds <= _LEAVES:
        return False
    return all(len(x) <= INLINE_MAX for x in items if type(x) is str or type(x) is bytes)


def _big_int(obj: Any) -> Any:
    """msgpack's ``default``: only ever called for ints beyond 64 bits."""
    if type(obj) is not int:
        raise EncodeError(f"cannot encode {type(obj).__qualname__}")
    size = (obj.bit_length() + 8) // 8
    if size > MAX_INT_BYTES:
        raise EncodeError(f"an int of {obj.bit_length()} bits is over the {8 * MAX_INT_BYTES} fed carries")
    return [_E[tags.BIG_INT], obj.to_bytes(size, "little", signed=True)]


def _decimal(d: decimal.Decimal) -> str:
    text = str(d)
    if len(text) > MAX_DECIMAL_CHARS:
        raise EncodeError(f"a Decimal of {len(text)} characters is over the {MAX_DECIMAL_CHARS} fed carries")
    return text


def _tz(enc: Encoder, tz: Any, depth: int) -> Any:
    if tz is None:
        return None
    if type(tz) is not datetime.timezone:
        raise EncodeError(f"time zones of type {type(tz).__qualname__} are not carried: use UTC or a fixed-offset "
                          "datetime.timezone")
    name = None if tz is datetime.timezone.utc else tz.tzname(None)
    return [_E[tags.TIMEZONE], enc.tree(tz.utcoffset(None), depth), name]


def _datetime(enc: Encoder, d: datetime.datetime, depth: int) -> list:
    return [_E[tags.DATETIME], d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond, d.fold,
            _tz(enc, d.tzinfo, depth)]


def _time(enc: Encoder, t: datetime.time, depth: int) -> list:
    return [_E[tags.TIME], t.hour, t.minute, t.second, t.microsecond, t.fold, _tz(enc, t.tzinfo, depth)]


def _slice(enc: Encoder, s: slice, depth: int) -> list:
    parts = (s.start, s.stop, s.step)
    if not all(p is None or type(p) is int for p in parts):
        raise EncodeError("slices cross only with int or None bounds")
    return [_E[tags.SLICE], *(enc.tree(p, depth) for p in parts)]


_BY_TYPE = {
    set: lambda enc, o, d: enc._items(tags.SET, o, d),
    frozenset: lambda enc, o, d: enc._items(tags.FROZENSET, o, d),
    collections.OrderedDict: lambda enc, o, d: enc._pairs(tags.ORDERED_DICT, o, d),
    collections.Counter: lambda enc, o, d: enc._pairs(tags.COUNTER, o, d),
    collections.deque: lambda enc, o, d: [_E[tags.DEQUE], o.maxlen, *(enc.tree(x, d) for x in o)],
    bytearray: lambda enc, o, d: [_E[tags.BYTEARRAY], (enc.oob(memoryview(o), copied=True) if len(o) > INLINE_MAX
                                                       else None) or bytes(o)],
    complex: lambda enc, o, d: [_E[tags.COMPLEX], o.real, o.imag],
    decimal.Decimal: lambda enc, o, d: [_E[tags.DECIMAL], _decimal(o)],
    fractions.Fraction: lambda enc, o, d: [_E[tags.FRACTION], enc.tree(o.numerator, d), enc.tree(o.denominator, d)],
    datetime.datetime: _datetime,
    datetime.date: lambda enc, o, d: [_E[tags.DATE], o.year, o.month, o.day],
    datetime.time: _time,
    datetime.timedelta: lambda enc, o, d: [_E[tags.TIMEDELTA], o.days, o.seconds, o.microseconds],
    datetime.timezone: lambda enc, o, d: _tz(enc, o, d),
    uuid.UUID: lambda enc, o, d: [_E[tags.UUID], o.bytes],
    range: lambda enc, o, d: [_E[tags.RANGE], enc.tree(o.start, d), enc.tree(o.stop, d), enc.tree(o.step, d)],
    slice: _slice,
    type(Ellipsis): lambda enc, o, d: [_E[tags.ELLIPSIS]],
    FedRemoteError: lambda enc, o, d: [_E[tags.REMOTE_ERROR], enc.tree(o.src_party, d), enc.tree(o.error_type, d),
                                       enc.tree(o.cause, d)],
}


class Encoded(NamedTuple):
    """A value's segments, and which of them the receiver copies out (``codec.holding_bound``)."""

    segments: list[memoryview]
    copied: tuple[int, ...]


def encode(value: Any, types: Types, by_value: bool = False) -> Encoded:
    """Segments of ``value``: the records, then each out-of-band buffer (none copied). With
    ``by_value`` (``allow_unsafe_deserialization``), what the codec does not carry is pickled with
    cloudpickle, classes and functions by value, as Ray moves them."""
    encoder = Encoder(types, by_value)
    tree = encoder.tree(value)
    encoder.segments[0] = encoder.records(tree)
    return Encoded(encoder.segments, tuple(encoder.copied))
