"""fed's wire form back to a value, with every amount of work bounded by the bytes that came.

msgpack decodes each record with limits taken from the record's own size (no length field can
make it allocate more than the record holds), and its C decoder caps nesting. Tagged arrays are
rebuilt as they complete (``list_hook``), each by a builder below that checks every part's type
and size, and raises ``DecodeError`` with fed's own words, never the peer's. What the peer makes
this party hold is at most ``MEMORY_PER_INBAND_BYTE`` times the records' size plus the
out-of-band segments (which arrays and bytes are rebuilt over or copied from once): the receiver
counts that against ``max_buffered_bytes`` before it takes the push.
"""

from __future__ import annotations

import codecs
import collections
import datetime
import decimal
import fractions
import itertools
import uuid
from collections.abc import Callable
from typing import Any

import msgpack

from fed._exceptions import FedRemoteError
from fed._security.untrusted import clip
from fed._serialization import arrays, records, restricted, tags
from fed._serialization.encoder import MAX_DECIMAL_CHARS, MAX_DEPTH, MAX_INT_BYTES
from fed._serialization.errors import DecodeError
from fed._serialization.policy import Policy

MEMORY_PER_INBAND_BYTE = 160  # the worst case, an empty deque per 5 bytes, is 154 (tests/unit/test_codec_bounds.py)
MAX_COLLIDING_KEYS = 16  # keys of one set or dict that share one hash
_NOTHING = object()
_STR_CHUNK = 1 << 24


class Decoder:
    """Decodes one value's segments (use ``decode``)."""

    def __init__(self, segments: list[memoryview], policy: Policy, copied: tuple[int, ...] = ()) -> None:
        self._segments = segments
        self._copied = frozenset(copied)
        self._used: set[int] = set()
        self._policy = policy
        self._markers = 0  # markers decoded, and markers consumed as the first item of a tagged array
        self._consumed = 0

    def _ext(self, code: int, data: bytes) -> tags.Marker:
        marker = tags.MARKERS.get(code)
        if marker is None or data:
            raise DecodeError("malformed value: an ext type fed does not use")
        self._markers += 1
        return marker

    def _list(self, items: list) -> Any:
        """msgpack's ``list_hook``: a tagged array becomes its value, a plain one stays a list."""
        if items and type(items[0]) is tags.Marker:
            self._consumed += 1
            tag = items[0].tag
            if tag == tags.TUPLE:  # the most common tag, built without another call
                return tuple(itertools.islice(items, 1, None))
            return _BUILDERS[tag](self, items)
        return items

    def _unpack(self, body: memoryview) -> Any:
        n = len(body)
        return msgpack.unpackb(body, raw=False, strict_map_key=True, unicode_errors="surrogatepass", timestamp=3,
                               ext_hook=self._ext, list_hook=self._list, use_list=True, max_str_len=n,
                               max_bin_len=n, max_array_len=n, max_map_len=n // 2, max_ext_len=n)

    def segment(self, index: Any, copy: bool = False) -> memoryview:
        """Out-of-band segment ``index``, each used once; ``copy`` for bytes and str, which only
        segments the header declared copied may be (the receiver counted those twice)."""
        if type(index) is not int or not 1 <= index < len(self._segments) or index in self._used:
            raise DecodeError("malformed value: a bad segment reference")
        if copy != (index in self._copied):
            raise DecodeError("malformed value: a segment used other than its header declared")
        self._used.add(index)
        return self._segments[index]

    def value(self) -> Any:
        data = self._segments[0]
        pos, end = 0, len(data)
        stack: list[tuple[int, list]] = []
        result = _NOTHING
        while pos < end:
            if end - pos < records.HEAD:
                raise DecodeError("malformed value: a truncated record")
            op, size = data[pos], int.from_bytes(data[pos + 1:pos + records.HEAD], "little")
            pos += records.HEAD
            if size > records.DOC_MAX or size > end - pos or (op > records.VALUES and size):
                raise DecodeError("malformed value: a record of a bad size")
            body = data[pos:pos + size]
            pos += size
            if op == records.VALUE or op == records.VALUES:
                item = self._unpack(body)
                if op == records.VALUES:
                    if not stack or type(item) is not list:
                        raise DecodeError("malformed value: items outside a list")
                    stack[-1][1].extend(item)
                    continue
            elif op in (records.OPEN_LIST, records.OPEN_MAP):
                if len(stack) >= MAX_DEPTH:
                    raise DecodeError(f"the value nests more than {MAX_DEPTH} records deep")
                stack.append((op, []))
                continue
            elif op == records.CLOSE and stack:
                kind, items = stack.pop()
                item = self._list(items) if kind == records.OPEN_LIST else _map(items)
            else:
                raise DecodeError("malformed value: an unknown record")
            if stack:
                stack[-1][1].append(item)
            elif result is _NOTHING:
                result = item
            else:
                raise DecodeError("malformed value: more than one value")
        if stack or result is _NOTHING:
            raise DecodeError("malformed value: it ends early")
        if self._markers != self._consumed:
            raise DecodeError("malformed value: a tag out of place")
        if len(self._used) != len(self._segments) - 1:
            raise DecodeError("malformed value: segments it does not use")
        _check_depth(result)
        return result


def decode(segments: list[memoryview], policy: Policy, copied: tuple[int, ...] = ()) -> Any:
    """The value ``encoder.encode`` made of ``segments``; ``DecodeError`` for anything else."""
    try:
        return Decoder(segments, policy, copied).value()
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("malformed value: it nests too deeply") from None
    except Exception as exc:  # noqa: BLE001 - msgpack and the constructors raise many kinds on bad input
        raise DecodeError("malformed value", detail=type(exc).__name__) from None


_NESTING = frozenset({list, tuple, dict, set, frozenset, collections.deque, collections.OrderedDict,
                      collections.Counter})


def _check_depth(value: Any) -> None:
    """``DecodeError`` if containers nest ``MAX_DEPTH`` levels or more (as the encoder refuses to
    send): deeper values would fail later, in Ray's pickling, far from here. Containers whose
    items are all leaves are passed over at C speed."""
    level = [value] if type(value) in _NESTING else []
    for _ in range(MAX_DEPTH):  # one level of containers at a time: a list of references, no more
        nested = []
        for obj in level:
            children = obj.values() if isinstance(obj, dict) else obj
            if isinstance(obj, dict) and set(map(type, obj)) & _NESTING:
                nested.extend(key for key in obj if type(key) in _NESTING)
            if set(map(type, children)) & _NESTING:
                nested.extend(child for child in children if type(child) in _NESTING)
        if not nested:
            return
        level = nested
    raise DecodeError(f"the value nests more than {MAX_DEPTH} levels deep")


def _map(items: list) -> dict:
    """A map that came in several records: keys are str or bytes, as in a msgpack map."""
    if len(items) % 2 or not set(map(type, items[::2])) <= {str, bytes}:
        raise DecodeError("malformed value: a map with bad keys")
    return dict(zip(items[::2], items[1::2]))


def _parts(items: list, count: int, what: str) -> list:
    if len(items) != count + 1:
        raise DecodeError(f"malformed {what}")
    return items


def _ints(values: Any, what: str, none: bool = False) -> None:
    for v in values:
        if not (type(v) is int or none and v is None):
            raise DecodeError(f"malformed {what}")


def _distinct(keys: list) -> None:
    """Keys of a set or dict must hash, and few may share one hash (crafted collisions make
    building a dict quadratic)."""
    try:
        hashes = list(map(hash, keys))
    except TypeError:
        raise DecodeError("malformed value: an unhashable key or set element") from None
    if len(hashes) > MAX_COLLIDING_KEYS and max(collections.Counter(hashes).values()) > MAX_COLLIDING_KEYS:
        raise DecodeError("malformed value: keys crafted to collide")


def _pairs(items: list) -> tuple[list, list]:
    if len(items) % 2 == 0:
        raise DecodeError("malformed mapping")
    keys, values = items[1::2], items[2::2]
    _distinct(keys)
    return keys, values


def _elements(items: list) -> list:
    elements = items[1:]
    _distinct(elements)
    return elements


def _deque(dec: Decoder, items: list) -> collections.deque:
    if len(items) < 2 or not (items[1] is None or type(items[1]) is int and 0 <= items[1] < 1 << 62):
        raise DecodeError("malformed deque")
    return collections.deque(itertools.islice(items, 2, None), items[1])


def _bytearray(dec: Decoder, items: list) -> bytearray:
    data = _parts(items, 1, "bytearray")[1]
    if type(data) is bytes:
        return bytearray(data)
    return bytearray(dec.segment(data, copy=True))


def _big_int(dec: Decoder, items: list) -> int:
    data = _parts(items, 1, "int")[1]
    if type(data) is not bytes or not 0 < len(data) <= MAX_INT_BYTES:
        raise DecodeError("malformed int")
    return int.from_bytes(data, "little", signed=True)


def _complex(dec: Decoder, items: list) -> complex:
    _, real, imag = _parts(items, 2, "complex")
    if type(real) is not float or type(imag) is not float:
        raise DecodeError("malformed complex")
    return complex(real, imag)


def _decimal(dec: Decoder, items: list) -> decimal.Decimal:
    text = _parts(items, 1, "Decimal")[1]
    if type(text) is not str or len(text) > MAX_DECIMAL_CHARS:
        raise DecodeError("malformed Decimal")
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise DecodeError("malformed Decimal") from None
    if value.is_finite() and not -1_000_000 <= value.adjusted() <= 1_000_000:
        raise DecodeError("a Decimal with an exponent beyond 10**6")
    return value


def _fraction(dec: Decoder, items: list) -> fractions.Fraction:
    _, num, den = _parts(items, 2, "Fraction")
    _ints((num, den), "Fraction")
    if den <= 0:
        raise DecodeError("malformed Fraction")
    return fractions.Fraction(num, den)


def _tz(value: Any) -> datetime.timezone | None:
    if value is None or type(value) is datetime.timezone:
        return value
    raise DecodeError("malformed time zone")


def _datetime(dec: Decoder, items: list) -> datetime.datetime:
    _, *fields, fold, tz = _parts(items, 9, "datetime")
    _ints((*fields, fold), "datetime")
    tz = _tz(tz)
    try:
        return datetime.datetime(*fields, tzinfo=tz, fold=fold)
    except (ValueError, OverflowError):
        raise DecodeError("malformed datetime") from None


def _date(dec: Decoder, items: list) -> datetime.date:
    _ints(_parts(items, 3, "date")[1:], "date")
    try:
        return datetime.date(*items[1:])
    except (ValueError, OverflowError):
        raise DecodeError("malformed date") from None


def _time(dec: Decoder, items: list) -> datetime.time:
    _, *fields, fold, tz = _parts(items, 6, "time")
    _ints((*fields, fold), "time")
    tz = _tz(tz)
    try:
        return datetime.time(*fields, tzinfo=tz, fold=fold)
    except (ValueError, OverflowError):
        raise DecodeError("malformed time") from None


def _timedelta(dec: Decoder, items: list) -> datetime.timedelta:
    _ints(_parts(items, 3, "timedelta")[1:], "timedelta")
    try:
        return datetime.timedelta(*items[1:])
    except (ValueError, OverflowError):
        raise DecodeError("malformed timedelta") from None


def _timezone(dec: Decoder, items: list) -> datetime.timezone:
    _, offset, name = _parts(items, 2, "time zone")
    if type(offset) is not datetime.timedelta or not (name is None or type(name) is str and len(name) <= 64):
        raise DecodeError("malformed time zone")
    try:
        return datetime.timezone(offset) if name is None else datetime.timezone(offset, name)
    except (ValueError, TypeError):
        raise DecodeError("malformed time zone") from None


def _uuid(dec: Decoder, items: list) -> uuid.UUID:
    data = _parts(items, 1, "UUID")[1]
    if type(data) is not bytes or len(data) != 16:
        raise DecodeError("malformed UUID")
    return uuid.UUID(bytes=data)


def _range(dec: Decoder, items: list) -> range:
    _ints(_parts(items, 3, "range")[1:], "range")
    if items[3] == 0:
        raise DecodeError("malformed range")
    return range(*items[1:])


def _slice(dec: Decoder, items: list) -> slice:
    _ints(_parts(items, 3, "slice")[1:], "slice", none=True)
    return slice(*items[1:])


def _remote_error(dec: Decoder, items: list) -> FedRemoteError:
    _, party, kind, cause = _parts(items, 3, "error value")
    if type(party) is not str or type(kind) is not str or not (cause is None or type(cause) is str):
        raise DecodeError("malformed error value")
    return FedRemoteError(party, kind, cause)


def _registered(dec: Decoder, items: list) -> Any:
    _, name, parts = _parts(items, 2, "registered type")
    entry = dec._policy.types.by_name.get(name) if type(name) is str else None
    if entry is None:
        raise DecodeError("the value holds a registered type that this party has not registered",
                          detail=f"{clip(name)} is not registered here (fed.register_type)")
    try:
        return entry.from_wire(parts)
    except Exception as exc:  # noqa: BLE001 - the user's function failed on the peer's parts
        raise DecodeError("the from_wire function of a registered type failed on the value",
                          detail=f"{entry.name}.from_wire raised {type(exc).__name__}: {clip(str(exc))}") from None


def _pickled(dec: Decoder, items: list) -> Any:
    _, stream, objects = _parts(items, 2, "pickled object")
    if type(stream) is not bytes or type(objects) is not list:
        raise DecodeError("malformed pickled object")
    policy = dec._policy
    if policy.unsafe:
        return restricted.loads_unsafe(stream, objects)
    if not policy.allowed:
        named = restricted.first_class(stream)
        raise DecodeError("the value holds an object of a class this party does not accept",
                          detail=f"{clip(named) if named else 'a class'} is not on its serializing_allowed_list; "
                                 "only data, arrays and registered types (fed.register_type) cross otherwise")
    return restricted.loads(stream, objects, policy.allowed)


def _str(dec: Decoder, items: list) -> str:
    data = dec.segment(_parts(items, 1, "str")[1], copy=True)
    decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
    try:  # in pieces: no one step of decoding a long string holds the interpreter for long
        pieces = [decoder.decode(data[i:i + _STR_CHUNK]) for i in range(0, len(data), _STR_CHUNK)]
        pieces.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise DecodeError("malformed str: not UTF-8") from None
    return "".join(pieces)


_BUILDERS: dict[int, Callable[[Decoder, list], Any]] = {
    tags.TUPLE: lambda dec, items: tuple(itertools.islice(items, 1, None)),
    tags.SET: lambda dec, items: set(_elements(items)),
    tags.FROZENSET: lambda dec, items: frozenset(_elements(items)),
    tags.DICT: lambda dec, items: dict(zip(*_pairs(items))),
    tags.ORDERED_DICT: lambda dec, items: collections.OrderedDict(zip(*_pairs(items))),
    tags.COUNTER: lambda dec, items: collections.Counter(dict(zip(*_pairs(items)))),
    tags.DEQUE: _deque,
    tags.BYTEARRAY: _bytearray,
    tags.BIG_INT: _big_int,
    tags.COMPLEX: _complex,
    tags.DECIMAL: _decimal,
    tags.FRACTION: _fraction,
    tags.DATETIME: _datetime,
    tags.DATE: _date,
    tags.TIME: _time,
    tags.TIMEDELTA: _timedelta,
    tags.TIMEZONE: _timezone,
    tags.UUID: _uuid,
    tags.RANGE: _range,
    tags.SLICE: _slice,
    tags.ELLIPSIS: lambda dec, items: _parts(items, 0, "Ellipsis") and Ellipsis,
    tags.NDARRAY: lambda dec, items: arrays.array_from_wire(items, dec.segment),
    tags.NUMPY_SCALAR: lambda dec, items: arrays.scalar_from_wire(items),
    tags.TENSOR: lambda dec, items: arrays.tensor_from_wire(items),
    tags.REMOTE_ERROR: _remote_error,
    tags.REGISTERED: _registered,
    tags.PICKLED: _pickled,
    tags.BYTES: lambda dec, items: bytes(dec.segment(_parts(items, 1, "bytes")[1], copy=True)),
    tags.STR: _str,
}
assert set(_BUILDERS) == set(tags.NAMES), "every tag has a builder"
