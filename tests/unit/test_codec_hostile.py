"""Hand-made hostile payloads against fed's decoder: each is refused for its own reason, in fed's
own words (nothing the payload held is echoed), and runs no code."""

from __future__ import annotations

import io
import os
import pickle
import re
import struct

import msgpack
import numpy as np
import pytest
from codec_payloads import M, glob, one, ops, pickled, raw, text

from fed._serialization import codec, records, registry, tags
from fed._serialization.errors import DecodeError
from fed._serialization.policy import Policy, make_policy

SECRET = "SECRET-3f9a"  # put in payloads; must never appear in a public error text


DEFAULT = Policy()


def refused(segments, match, policy=DEFAULT, copied=()):
    with pytest.raises(DecodeError, match=match) as info:
        codec.decode(segments, policy, copied)
    assert SECRET not in str(info.value) and len(str(info.value)) < 200
    return info.value


P = msgpack.packb


def big(n: int) -> list:
    return [M[tags.BIG_INT], n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)]


COLLIDING = [big(5 + i * (2**61 - 1)) for i in range(100)]  # 100 distinct ints with one hash


def nested_tuple(depth: int) -> list:
    key: object = 1
    for _ in range(depth):
        key = [M[tags.TUPLE], key]
    return key


DEEP_KEY = nested_tuple(120)  # a dict key: a tuple in a tuple ... 120 deep
BAD_DTYPE = "an array names a dtype that fed does not accept"
NO_MATCH = "an array's data does not match its shape and dtype"
BAD_SIZE = "malformed value: a record of a bad size"
BAD_EXT = "malformed value: an ext type fed does not use"
COLLIDE = "malformed value: keys crafted to collide"
BAD_BOOL = "a bool array holds values other than 0 and 1"
BAD_CODES = "a str array holds code points beyond Unicode"
SCALAR_SIZE = "a numpy scalar's data does not match its dtype"
UNDECLARED = "malformed value: a segment used other than its header declared"
UNREGISTERED = "the value holds a registered type that this party has not registered"
NOT_ACCEPTED = "the value holds an object of a class this party does not accept"
UNHASHABLE = "malformed value: an unhashable key or set element"
CASES = {
    "unknown_ext": (one(msgpack.ExtType(99, b"")), BAD_EXT),
    "ext_with_data": (one(msgpack.ExtType(tags.TUPLE, SECRET.encode())), BAD_EXT),
    "marker_not_first": (one([1, M[tags.TUPLE]]), "malformed value: a tag out of place"),
    "marker_alone": (one(M[tags.SET]), "malformed value: a tag out of place"),
    "marker_in_map": (one({"k": M[tags.SET]}), "malformed value: a tag out of place"),
    "two_markers": (one([M[tags.TUPLE], M[tags.SET]]), "malformed value: a tag out of place"),
    "int_key_in_map": (one({1: SECRET}), "malformed value"),
    "unhashable_dict_key": (one([M[tags.DICT], [1], SECRET]), UNHASHABLE),
    "unhashable_set_element": (one([M[tags.SET], {"a": SECRET}]), UNHASHABLE),
    "odd_dict": (one([M[tags.DICT], 1]), "malformed mapping"),
    "colliding_int_keys": (one([M[tags.DICT], *[x for k in COLLIDING for x in (k, 0)]]), COLLIDE),
    "colliding_set": (one([M[tags.SET], *COLLIDING]), COLLIDE),
    "nesting_past_msgpack": (raw((records.VALUE, b"\x91" * 2000 + b"\xc0")), "malformed value"),
    "array_claims_4g_items": (raw((records.VALUE, b"\xdd\xff\xff\xff\xff")), "malformed value"),
    "str_claims_4g": (raw((records.VALUE, b"\xdb\xff\xff\xff\xff" + SECRET.encode())), "malformed value"),
    "bin_claims_4g": (raw((records.VALUE, b"\xc6\xff\xff\xff\xff")), "malformed value"),
    "trailing_bytes": (raw((records.VALUE, b"\xc0\xc0")), "malformed value"),
    "empty_record": (raw((records.VALUE, b"")), "malformed value"),
    "two_values": (raw((records.VALUE, P(1)), (records.VALUE, P(2))), "malformed value: more than one value"),
    "values_outside_list": (raw((records.VALUES, P([1]))), "malformed value: items outside a list"),
    "values_not_a_list": (raw((records.OPEN_LIST, b""), (records.VALUES, P(1)), (records.CLOSE, b"")),
                          "malformed value: items outside a list"),
    "open_never_closed": (raw((records.OPEN_LIST, b"")), "malformed value: it ends early"),
    "close_without_open": (raw((records.CLOSE, b"")), "malformed value: an unknown record"),
    "unknown_op": (raw((9, b"")), "malformed value: an unknown record"),
    "open_with_body": (raw((records.OPEN_LIST, b"x")), BAD_SIZE),
    "record_over_doc_max": (raw((records.VALUE, b"\xc0" * (records.DOC_MAX + 1))), BAD_SIZE),
    "truncated_record": ([memoryview(bytes([records.VALUE]) + (100).to_bytes(4, "little") + b"\xc0")], BAD_SIZE),
    "truncated_head": ([memoryview(b"\x00\x01")], "malformed value: a truncated record"),
    "records_too_deep": (raw(*[(records.OPEN_LIST, b"")] * 101), "the value nests more than 100 records deep"),
    "lists_too_deep": (raw((records.VALUE, b"\x91" * 150 + b"\xc0")), "the value nests more than 100 levels deep"),
    "dict_key_too_deep": (one([M[tags.DICT], DEEP_KEY, "v"]), "the value nests more than 100 levels deep"),
    "map_with_int_keys_in_records": (raw((records.OPEN_MAP, b""), (records.VALUES, P([1, 2])), (records.CLOSE, b"")),
                                     "malformed value: a map with bad keys"),
    "nothing": ([memoryview(b"")], "malformed value: it ends early"),
    # arrays
    "object_dtype": (one([M[tags.NDARRAY], "|O", [1], False, b"\x00" * 8]), BAD_DTYPE),
    "void_dtype": (one([M[tags.NDARRAY], "|V8", [1], False, b"\x00" * 8]), BAD_DTYPE),
    "structured_dtype": (one([M[tags.NDARRAY], "[('a', '<i4')]", [1], False, b"\x00" * 4]), BAD_DTYPE),
    "dtype_not_a_str": (one([M[tags.NDARRAY], ["<f8"], [1], False, b"\x00" * 8]), BAD_DTYPE),
    "dtype_with_secret": (one([M[tags.NDARRAY], SECRET, [1], False, b"\x00" * 8]), BAD_DTYPE),
    "shape_mismatch": (one([M[tags.NDARRAY], "<f8", [2], False, b"\x00" * 8]), NO_MATCH),
    "negative_dim": (one([M[tags.NDARRAY], "<f8", [-1], False, b""]), "malformed array shape"),
    "too_many_dims": (one([M[tags.NDARRAY], "<f8", [1] * 33, False, b"\x00" * 8]), "malformed array shape"),
    "huge_dims_no_data": (one([M[tags.NDARRAY], "<f8", [2**62, 2**62], False, b""]), NO_MATCH),
    "zero_dim_huge_other": (one([M[tags.NDARRAY], "|u1", [0, 2**62, 2**62], False, b""]), "malformed array shape"),
    "bool_values": (one([M[tags.NDARRAY], "|b1", [2], False, b"\x00\x02"]), BAD_BOOL),
    "unicode_beyond": (one([M[tags.NDARRAY], "<U1", [1], False, b"\xff\xff\xff\x7f"]), BAD_CODES),
    "huge_str_itemsize": (one([M[tags.NDARRAY], "<U999999999", [1], False, b""]), BAD_DTYPE),
    "array_fields_missing": (one([M[tags.NDARRAY], "<f8"]), "malformed array"),
    "scalar_wrong_size": (one([M[tags.NUMPY_SCALAR], "<f8", b"\x00"]), SCALAR_SIZE),
    "scalar_object": (one([M[tags.NUMPY_SCALAR], "|O", b"\x00" * 8]), BAD_DTYPE),
    "segment_zero": (one([M[tags.NDARRAY], "|u1", [1], False, 0]), "malformed value: a bad segment reference"),
    "segment_missing": (one([M[tags.NDARRAY], "|u1", [1], False, 5]), "malformed value: a bad segment reference"),
    "segment_twice": (one([[M[tags.NDARRAY], "|u1", [1], False, 1], [M[tags.NDARRAY], "|u1", [1], False, 1]], b"x"),
                      "malformed value: a bad segment reference"),
    "segment_unused": (one(1, b"extra"), "malformed value: segments it does not use"),
    "segment_bytes_undeclared": (one([M[tags.BYTES], 1], b"x"), UNDECLARED),
    # other types
    "big_int_too_big": (one([M[tags.BIG_INT], b"\x01" * 9000]), "malformed int"),
    "complex_of_strs": (one([M[tags.COMPLEX], "1", "2"]), "malformed complex"),
    "decimal_huge_exponent": (one([M[tags.DECIMAL], "1e999999999"]), "a Decimal with an exponent beyond 10**6"),
    "decimal_long": (one([M[tags.DECIMAL], "1" * 5000]), "malformed Decimal"),
    "decimal_garbage": (one([M[tags.DECIMAL], SECRET]), "malformed Decimal"),
    "fraction_zero": (one([M[tags.FRACTION], 1, 0]), "malformed Fraction"),
    "datetime_year_zero": (one([M[tags.DATETIME], 0, 1, 1, 0, 0, 0, 0, 0, None]), "malformed datetime"),
    "datetime_tz_not_tz": (one([M[tags.DATETIME], 2000, 1, 1, 0, 0, 0, 0, 0, SECRET]), "malformed time zone"),
    "timezone_too_large": (one([M[tags.TIMEZONE], [M[tags.TIMEDELTA], 2, 0, 0], None]), "malformed time zone"),
    "timedelta_overflow": (one([M[tags.TIMEDELTA], 10**12, 0, 0]), "malformed timedelta"),
    "range_step_zero": (one([M[tags.RANGE], 0, 1, 0]), "malformed range"),
    "deque_negative": (one([M[tags.DEQUE], -1, 1]), "malformed deque"),
    "deque_huge_maxlen": (one([M[tags.DEQUE], 2**63 - 1, 1]), "malformed deque"),
    "uuid_short": (one([M[tags.UUID], b"\x00"]), "malformed UUID"),
    "remote_error_types": (one([M[tags.REMOTE_ERROR], 1, 2, 3]), "malformed error value"),
    "unregistered_type": (one([M[tags.REGISTERED], SECRET, {}]), UNREGISTERED),
    "pickled_without_list": (one([M[tags.PICKLED], pickle.dumps(os.getcwd), []]), NOT_ACCEPTED),
    "pickled_not_bytes": (one([M[tags.PICKLED], SECRET, []]), "malformed pickled object"),
    "str_not_utf8": (one([M[tags.STR], 1], b"\xff\xfe"), "malformed str: not UTF-8"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_payloads_are_refused_in_feds_own_words(name):
    segments, message = CASES[name]
    copied = (1,) if name == "str_not_utf8" else ()

    error = refused(segments, re.escape(message), copied=copied)

    assert str(error) == message


def test_a_msgpack_timestamp_decodes_as_a_datetime_and_nothing_else():
    got = codec.decode(one(msgpack.Timestamp(1, 0)), Policy())

    assert type(got).__name__ == "datetime"


class Listed:
    def __init__(self, x=None):
        self.x = x


LISTED = make_policy(registry.NONE, {__name__: ["Listed"]}, unsafe=False)


@pytest.fixture
def canary(tmp_path):
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "a pickled payload ran a command"


@pytest.mark.parametrize("module, name", [
    ("builtins", "eval"), ("builtins", "getattr"), ("builtins", "__import__"), ("os", "system"), ("posix", "system"),
    ("subprocess", "Popen"), (__name__, "os"), (__name__, "Listed.__init__"), (__name__, "pickle"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"), ("copyreg", "_reconstructor"),
])
def test_a_pickled_object_cannot_name_code_or_traverse_attributes(module, name, canary):
    stream = ops(glob(module, name), text(f"touch {canary}"), pickle.TUPLE1, pickle.REDUCE)

    refused(pickled(stream), "does not accept", LISTED)


def test_a_star_never_reaches_what_a_module_imported(canary):
    star = make_policy(registry.NONE, {__name__: ["*"]}, unsafe=False)

    for name in ("os", "pickle", "np", "msgpack", "refused"):
        stream = ops(glob(__name__, name), text(f"touch {canary}"), pickle.TUPLE1, pickle.REDUCE)
        refused(pickled(stream), "does not accept", star)


def test_a_pickled_object_calls_only_what_it_named():
    # REDUCE with a callable that came from a persistent id (an array), not from find_class.
    stream = ops(pickle.BININT1 + b"\x00", pickle.BINPERSID, pickle.EMPTY_TUPLE, pickle.REDUCE)
    array = [M[tags.NDARRAY], "|u1", [1], False, b"\x01"]

    refused(pickled(stream, [array]), "calls something it did not name", LISTED)


def test_a_pickled_object_cannot_change_an_array_or_a_class():
    # BUILD with a hostile state on a carried array: ndarray.__setstate__ would take any dtype.
    state = ops(pickle.BININT1 + b"\x00", pickle.BINPERSID, pickle.EMPTY_DICT, pickle.BUILD)
    refused(pickled(state, [[M[tags.NDARRAY], "|u1", [1], False, b"\x01"]]), "changes something", LISTED)
    # BUILD on the listed class itself would rewrite it for the whole process.
    cls = ops(glob(__name__, "Listed"), pickle.EMPTY_DICT, text("x"), text(SECRET), pickle.SETITEM, pickle.BUILD)
    refused(pickled(cls), "changes something", LISTED)
    assert not hasattr(Listed, "x") or Listed.x is None


def test_a_pickled_object_cannot_make_a_small_stream_copy_a_large_object_many_times():
    # One list of 50,000 items, then the listed constructor called with it over and over.
    items = pickle.EMPTY_LIST + pickle.MEMOIZE + pickle.MARK + pickle.NONE * 50_000 + pickle.APPENDS
    call = pickle.MARK + glob(__name__, "Listed") + pickle.BINGET + b"\x00" + pickle.TUPLE1 + pickle.REDUCE + pickle.POP
    stream = ops(items, *[call] * 400, pickle.POP_MARK, pickle.NONE)

    refused(pickled(stream), "more work than its size allows", LISTED)


def test_a_pickled_bytearray_cannot_claim_more_than_the_stream_holds():
    stream = ops(pickle.BYTEARRAY8 + struct.pack("<Q", 1 << 40))

    refused(pickled(stream), "malformed pickled object", LISTED)


def test_a_listed_class_still_unpickles_with_its_state():
    got = codec.decode(pickled(pickle.dumps(Listed({"a": [1, 2]}), protocol=5)), LISTED)

    assert type(got) is Listed and got.x == {"a": [1, 2]}


def test_a_registered_from_wire_that_fails_is_refused_and_names_the_type_only_locally():
    registry.unregister_all()
    try:
        registry.register_type(Listed, to_wire=lambda o: o.x, from_wire=lambda p: 1 / 0, name="listed")
        policy = Policy(types=registry.snapshot())

        error = refused(one([M[tags.REGISTERED], "listed", SECRET]), "from_wire function", policy)

        assert str(error) == "the from_wire function of a registered type failed on the value"
        assert error.detail == "listed.from_wire raised ZeroDivisionError: division by zero"
    finally:
        registry.unregister_all()


def test_fuzzed_records_never_raise_anything_but_a_decode_error():
    rng = np.random.default_rng(7)
    good = codec.encode({"a": [1, (2, 3.5), {4, 5}], "b": np.arange(3), "c": b"x" * 10}).segments[0].tobytes()
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.integers(1, 6)):
            data[rng.integers(len(data))] = rng.integers(256)
        try:
            codec.decode([memoryview(data)], Policy())
        except DecodeError:
            pass


def test_unsafe_mode_is_what_runs_code(canary):
    stream = ops(glob("os", "system"), text(f"touch {canary}"), pickle.TUPLE1, pickle.REDUCE)

    codec.decode(pickled(stream), make_policy(registry.NONE, None, unsafe=True))

    assert canary.exists()  # the checks above can fail
    canary.unlink()


_ = io  # imported for its name only: a star must not reach modules a test module imports



def test_a_pickled_object_without_a_list_names_its_class_only_in_the_detail():
    error = refused(pickled(pickle.dumps(os.getcwd)), "does not accept")
    assert error.detail == (f"{os.getcwd.__module__}.getcwd is not on its serializing_allowed_list; only data, arrays "
                            "and registered types (fed.register_type) cross otherwise")

    unnamed = refused(pickled(b"\x80\x04N."), "does not accept")
    assert unnamed.detail.startswith("a class is not on its serializing_allowed_list; only data")
