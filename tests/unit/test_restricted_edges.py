"""The restricted unpickler opcode by opcode: every way a stream can call, build or allocate is
checked, and its work budget is exactly the one documented (4 per byte of stream, plus 1024)."""

from __future__ import annotations

import pickle
import struct
import tracemalloc

import numpy as np
import pytest
from codec_payloads import M, glob, ops, pickled, text

from fed._serialization import codec, registry, restricted, tags
from fed._serialization.errors import DecodeError, EncodeError
from fed._serialization.policy import Policy, make_policy

ARRAY = [M[tags.NDARRAY], "|u1", [1], False, b"\x07"]


class Listed:
    def __init__(self, x=None):
        self.x = x


class Other:
    pass


class Many:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def helper(x):
    return ("helped", x)


class Deep:
    def __init__(self, n):
        Deep(n + 1)


LISTED = make_policy(registry.NONE, {__name__: ["Listed", "Many", "helper", "Alias", "Deep"]}, unsafe=False)


def decode(stream: bytes, objects=(), policy=LISTED):
    return codec.decode(pickled(stream, objects), policy)


def refused(stream: bytes, message: str, objects=(), policy=LISTED) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(stream, objects, policy)
    assert str(info.value) == message
    return info.value


CALLS_UNNAMED = "a pickled object calls something it did not name"
MALFORMED = "malformed pickled object"
OVER_BUDGET = "a pickled object asks for more work than its size allows"
NOT_ACCEPTED = "the value holds an object of a class this party does not accept"


# --- every opcode that calls something


def test_newobj_ex_makes_a_listed_class_and_calls_nothing_else():
    got = decode(ops(glob(__name__, "Listed"), pickle.EMPTY_TUPLE, pickle.EMPTY_DICT, pickle.NEWOBJ_EX))
    assert type(got) is Listed

    array_as_class = pickle.BININT1 + b"\x00" + pickle.BINPERSID
    refused(ops(array_as_class, pickle.EMPTY_TUPLE, pickle.EMPTY_DICT, pickle.NEWOBJ_EX), CALLS_UNNAMED, [ARRAY])


def test_newobj_makes_a_listed_class_and_calls_nothing_else():
    assert type(decode(ops(glob(__name__, "Listed"), pickle.EMPTY_TUPLE, pickle.NEWOBJ))) is Listed

    refused(ops(pickle.BININT1 + b"\x00" + pickle.BINPERSID, pickle.EMPTY_TUPLE, pickle.NEWOBJ), CALLS_UNNAMED,
            [ARRAY])


def test_inst_and_obj_make_a_listed_class_and_call_nothing_else():
    inst = pickle.MARK + text("a") + pickle.INST + f"{__name__}\nListed\n".encode()
    got = decode(ops(inst))
    assert type(got) is Listed and got.x == "a"
    refused(ops(pickle.MARK + pickle.INST + f"{__name__}\nOther\n".encode()), NOT_ACCEPTED)

    obj = pickle.MARK + glob(__name__, "Listed") + text("b") + pickle.OBJ
    assert decode(ops(obj)).x == "b"
    refused(ops(pickle.MARK + pickle.BININT1 + b"\x00" + pickle.BINPERSID + pickle.OBJ), CALLS_UNNAMED, [ARRAY])


def test_reduce_takes_a_tuple_of_arguments_only():
    assert decode(ops(glob(__name__, "Listed"), text("c"), pickle.TUPLE1, pickle.REDUCE)).x == "c"

    refused(ops(glob(__name__, "Listed"), text("c"), pickle.REDUCE), MALFORMED)
    refused(ops(glob(__name__, "Listed"), pickle.EMPTY_LIST, pickle.REDUCE), MALFORMED)


# --- persistent ids: only the codec's own, by index


@pytest.mark.parametrize("pid", [b"\x4a\xff\xff\xff\xff", pickle.BININT1 + b"\x01", text("0"), pickle.NONE],
                         ids=["negative", "one_past_the_end", "a_str", "none"])
def test_a_persistent_id_is_an_index_of_a_carried_object(pid):
    error = refused(ops(pid, pickle.BINPERSID), MALFORMED, [ARRAY])

    assert error.detail is None  # refused by the check, not by an IndexError further on


def test_a_persistent_id_names_the_carried_object_it_indexes():
    got = decode(ops(pickle.BININT1 + b"\x01", pickle.BINPERSID), [ARRAY, [M[tags.NDARRAY], "|u1", [2], False, b"ab"]])

    np.testing.assert_array_equal(got, np.frombuffer(b"ab", np.uint8))


def test_a_text_persistent_id_is_refused():
    refused(ops(pickle.PERSID + b"0\n"), MALFORMED, [ARRAY])


# --- allocation


def test_a_bytearray8_longer_than_the_stream_is_refused_before_anything_is_allocated():
    stream = ops(pickle.BYTEARRAY8 + struct.pack("<Q", 64 << 20) + b"x" * 100)
    tracemalloc.start()
    try:
        refused(stream, MALFORMED)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_a_bytearray8_size_past_two_to_the_63_is_refused_by_the_check():
    error = refused(ops(pickle.BYTEARRAY8 + struct.pack("<Q", (1 << 64) - 1)), MALFORMED)

    assert error.detail is None


def test_a_listed_object_keeps_its_bytearray():
    got = codec.decode(codec.encode(Listed(bytearray(b"abc"))).segments, LISTED)

    assert type(got.x) is bytearray and got.x == bytearray(b"abc")
    short = ops(pickle.BYTEARRAY8 + struct.pack("<Q", 3) + b"abc")
    assert decode(short) == bytearray(b"abc")


# --- the budget: 1 per call or state plus the length of each argument, against 4 per byte + 1024


def _calls(n: int, k: int) -> bytes:
    """A list of ``n`` Nones, then the listed constructor called ``k`` times with it."""
    items = pickle.EMPTY_LIST + pickle.MEMOIZE + pickle.MARK + pickle.NONE * n + pickle.APPENDS
    call = glob(__name__, "Listed") + pickle.BINGET + b"\x00" + pickle.TUPLE1 + pickle.REDUCE + pickle.POP
    return ops(items, call * k, pickle.NONE)


def _builds(n: int, k: int) -> bytes:
    """A dict of ``n`` items, then ``k`` new listed objects, each given it as its state."""
    items = pickle.EMPTY_DICT + pickle.MEMOIZE + pickle.MARK
    items += b"".join(text(f"k{i}") + pickle.NONE for i in range(n)) + pickle.SETITEMS
    build = (glob(__name__, "Listed") + pickle.EMPTY_TUPLE + pickle.NEWOBJ + pickle.BINGET + b"\x00"
             + pickle.BUILD + pickle.POP)
    return ops(items, build * k, pickle.NONE)


def _budget(stream: bytes) -> int:
    return restricted.BUDGET_PER_BYTE * len(stream) + 1024


@pytest.mark.parametrize("k", [5, 10, 40])  # fewer calls than 5 per None never pass 4 per byte
def test_calls_are_charged_one_plus_the_length_of_each_argument(k):
    # the largest n whose k calls cost exactly what the stream may spend
    n = max(n for n in range(1, 4000) if k * (1 + n) <= _budget(_calls(n, k)))

    assert decode(_calls(n, k)) is None
    refused(_calls(n + 1, k), OVER_BUDGET)


@pytest.mark.parametrize("k", [40, 100])  # each item is 6 bytes: 24 of budget
def test_each_state_is_charged_one_plus_its_length_and_each_new_object_one(k):
    def cost(n):
        return k * (1 + 0) + k * (1 + n)  # NEWOBJ with no arguments, then BUILD with n items

    n = max(n for n in range(1, 3000) if cost(n) <= _budget(_builds(n, k)))

    assert decode(_builds(n, k)) is None
    refused(_builds(n + 1, k), OVER_BUDGET)


def _int_calls(n: int, k: int, ex: bool = False) -> bytes:
    """``Many`` called ``k`` times with the same ``n`` int arguments (and, with ``ex``, by NEWOBJ_EX
    with ``2 * n`` keyword arguments too)."""
    args = pickle.MARK + (pickle.BININT1 + b"\x05") * n + pickle.TUPLE + pickle.MEMOIZE  # memo 1
    kwargs = pickle.EMPTY_DICT + pickle.MARK + b"".join(text(f"k{i}") + pickle.NONE for i in range(2 * n)) + \
        pickle.SETITEMS + pickle.MEMOIZE  # memo 2
    head = glob(__name__, "Many") + pickle.MEMOIZE + pickle.POP + args + pickle.POP  # memo 0
    if ex:
        head += kwargs + pickle.POP
        call = pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01" + pickle.BINGET + b"\x02" + pickle.NEWOBJ_EX
    else:
        call = pickle.BINGET + b"\x00" + pickle.BINGET + b"\x01" + pickle.REDUCE
    return ops(head, (call + pickle.POP) * k, pickle.NONE)


@pytest.mark.parametrize("n", [50, 200])
def test_an_argument_without_a_length_costs_one(n):
    k = max(k for k in range(1, 2000) if k * (1 + n) <= _budget(_int_calls(n, k)))

    assert decode(_int_calls(n, k)) is None
    refused(_int_calls(n, k + 1), OVER_BUDGET)


@pytest.mark.parametrize("n", [50, 200])
def test_newobj_ex_is_charged_for_its_arguments_and_its_keywords(n):
    k = max(k for k in range(1, 2000) if k * (1 + n + 2 * n) <= _budget(_int_calls(n, k, ex=True)))

    assert decode(_int_calls(n, k, ex=True)) is None
    refused(_int_calls(n, k + 1, ex=True), OVER_BUDGET)
    made = decode(ops(glob(__name__, "Many"), pickle.EMPTY_TUPLE, pickle.EMPTY_DICT, text("a"), pickle.NONE,
                      pickle.SETITEM, pickle.NEWOBJ_EX))
    assert type(made) is Many


# --- names


def test_a_module_that_is_not_listed_is_not_accepted():
    for module, name in (("json", "JSONDecoder"), ("collections", "ChainMap"), (__name__ + "x", "Listed")):
        error = refused(ops(glob(module, name)), NOT_ACCEPTED)
        assert error.detail == f"{module}.{name} is not on its serializing_allowed_list"


def test_the_names_in_a_refusal_are_clipped_to_100_chars_each():
    module, name = "m" * 150, "N" * 150
    error = refused(ops(glob(module, name)), NOT_ACCEPTED)

    assert error.detail == f"{'m' * 100}...(150 chars).{'N' * 100}...(150 chars) is not on its serializing_allowed_list"


def test_a_listed_name_must_be_the_object_it_names_in_that_module():
    refused(ops(glob(__name__, "Missing")), NOT_ACCEPTED, policy=make_policy(registry.NONE, {__name__: ["Missing"]},
                                                                              unsafe=False))
    error = refused(ops(glob(__name__, "Other")), NOT_ACCEPTED)
    assert error.detail == f"{__name__}.Other is not on its serializing_allowed_list"


def test_a_star_takes_a_class_defined_in_the_module_under_its_own_name_only():
    star = make_policy(registry.NONE, {__name__: ["*"]}, unsafe=False)
    assert type(decode(ops(glob(__name__, "Other"), pickle.EMPTY_TUPLE, pickle.NEWOBJ), policy=star)) is Other

    for name in ("Alias", "pickled", "np", "ARRAY"):  # another name for a class; a function; a module; data
        error = refused(ops(glob(__name__, name)), NOT_ACCEPTED, policy=star)
        assert error.detail == f"{__name__}.{name} is not a class defined there"


Alias = Listed


@pytest.mark.parametrize("module, name", [(__name__ + ".", "Listed"), (__name__, "Listed.x"), (__name__, ""),
                                          ("", "Listed"), (__name__, "1Listed")])
def test_a_name_must_be_an_identifier_and_a_module_a_dotted_path(module, name):
    # an Allowed made by hand, past compile_allowed's checks: find_class checks the names itself
    stars = Policy(allowed=restricted.Allowed(names={}, star=frozenset({__name__, __name__ + ".", ""})))
    error = refused(ops(glob(module, name)), NOT_ACCEPTED, policy=stars)

    assert error.detail.endswith("is not on its serializing_allowed_list")  # refused by the name check itself


def test_safe_standard_types_need_no_listing_and_are_the_only_builtins():
    assert decode(ops(glob("builtins", "complex"), pickle.BINFLOAT + struct.pack(">d", 1.5), pickle.TUPLE1,
                      pickle.REDUCE)) == 1.5 + 0j
    refused(ops(glob("builtins", "bytearray")), NOT_ACCEPTED)


def test_a_stream_names_its_first_class_for_this_partys_own_message():
    assert restricted.first_class(pickle.dumps(Other(), protocol=4)) == f"{__name__}.Other"
    assert restricted.first_class(ops(pickle.GLOBAL + b"m\nC\n")) == "m.C"
    assert restricted.first_class(ops(pickle.MARK + pickle.INST + b"m\nC\n")) == "m.C"
    assert restricted.first_class(ops(text("x"), pickle.POP, glob("m", "C"))) == "m.C"
    assert restricted.first_class(b"\x80\x04" + pickle.NONE * 300 + b".") is None
    assert restricted.first_class(b"garbage") is None
    # strings and other ops before the class do not name it
    assert restricted.first_class(ops(text("a"), text("b"), pickle.POP, pickle.POP, pickle.GLOBAL + b"m\nC\n")) == "m.C"
    assert restricted.first_class(ops(pickle.PERSID + b"x y\n", pickle.POP, pickle.GLOBAL + b"m\nC\n")) == "m.C"
    # it looks at the first 200 opcodes after the protocol, no further
    assert restricted.first_class(ops(pickle.NONE * 199, pickle.GLOBAL + b"m\nC\n")) == "m.C"
    assert restricted.first_class(ops(pickle.NONE * 200, pickle.GLOBAL + b"m\nC\n")) is None
    assert restricted.first_class(ops(pickle.NONE)) is None


def test_unsafe_mode_still_takes_carried_arrays_by_persistent_id():
    unsafe = make_policy(registry.NONE, None, unsafe=True)

    got = codec.decode(codec.encode(Listed(np.arange(3))).segments, unsafe)

    np.testing.assert_array_equal(got.x, np.arange(3))


# --- nothing resolved or carried is changed: each mutating opcode finds its own target

CHANGES = "a pickled object changes something it did not build"
CARRIED = pickle.BININT1 + b"\x00" + pickle.BINPERSID
BELOW = pickle.NONE  # something else on the stack under the target, so the target's position matters


@pytest.mark.parametrize("target", ["carried", "class", "function"])
@pytest.mark.parametrize("op", ["BUILD", "APPEND", "SETITEM", "APPENDS", "SETITEMS", "ADDITEMS"])
def test_no_opcode_changes_a_carried_object_or_a_resolved_class(op, target):
    what = {"carried": CARRIED, "class": glob(__name__, "Listed"), "function": glob(__name__, "helper")}[target]
    change = {
        "BUILD": pickle.EMPTY_DICT + pickle.BUILD,
        "APPEND": pickle.NONE + pickle.APPEND,
        "SETITEM": text("k") + pickle.NONE + pickle.SETITEM,
        "APPENDS": pickle.MARK + pickle.NONE + pickle.APPENDS,
        "SETITEMS": pickle.MARK + text("k") + pickle.NONE + pickle.SETITEMS,
        "ADDITEMS": pickle.MARK + pickle.NONE + pickle.ADDITEMS,
    }[op]

    refused(ops(BELOW, what, change), CHANGES, [ARRAY])


@pytest.mark.parametrize("op", ["BUILD", "APPEND", "SETITEM", "APPENDS", "SETITEMS", "ADDITEMS"])
def test_each_mutating_opcode_still_works_on_what_the_stream_built(op):
    made = {
        "BUILD": glob(__name__, "Listed") + pickle.EMPTY_TUPLE + pickle.NEWOBJ + pickle.EMPTY_DICT + text("x")
        + text("v") + pickle.SETITEM + pickle.BUILD,
        "APPEND": pickle.EMPTY_LIST + text("v") + pickle.APPEND,
        "SETITEM": pickle.EMPTY_DICT + text("x") + text("v") + pickle.SETITEM,
        "APPENDS": pickle.EMPTY_LIST + pickle.MARK + text("v") + pickle.APPENDS,
        "SETITEMS": pickle.EMPTY_DICT + pickle.MARK + text("x") + text("v") + pickle.SETITEMS,
        "ADDITEMS": pickle.EMPTY_SET + pickle.MARK + text("v") + pickle.ADDITEMS,
    }[op]
    # under a carried object, which stays untouched
    got = decode(ops(CARRIED, made, pickle.TUPLE2), [ARRAY])

    value = got[1].x if op == "BUILD" else got[1]
    assert value in (["v"], {"x": "v"}, {"v"}, "v")
    assert got[0].tolist() == [7]


class Unpicklable:
    def __reduce__(self):
        raise ValueError("z" * 500)


def test_an_object_that_cannot_be_pickled_is_named_with_why_and_what_to_do():
    with pytest.raises(EncodeError) as info:
        codec.encode(Unpicklable())

    assert str(info.value) == (f"fed's codec does not carry {__name__}.Unpicklable and it cannot be pickled either "
                               f"(ValueError: {'z' * 200}...(500 chars)). Register it with fed.register_type at both "
                               "parties, or send plain data (dicts, lists, arrays)")


def test_an_exact_listing_takes_any_object_of_that_name_a_star_only_classes_under_their_own_name():
    assert decode(ops(glob(__name__, "helper"), text("a"), pickle.TUPLE1, pickle.REDUCE)) == ("helped", "a")
    assert type(decode(ops(glob(__name__, "Alias"), pickle.EMPTY_TUPLE, pickle.NEWOBJ))) is Listed
    assert not hasattr(helper, "x")


def test_a_missing_name_in_a_starred_module_is_clipped_in_the_refusal():
    star = make_policy(registry.NONE, {__name__: ["*"]}, unsafe=False)

    error = refused(ops(glob(__name__, "N" * 150)), NOT_ACCEPTED, policy=star)

    assert error.detail == f"{__name__}.{'N' * 100}...(150 chars) is not a class defined there"


def test_a_stream_that_ends_early_is_malformed_and_names_why_only_here():
    error = refused(b"\x80\x04" + pickle.EMPTY_LIST, MALFORMED)

    assert error.detail == "EOFError"


def test_a_constructor_that_recurses_without_end_is_refused_as_too_deep():
    refused(ops(glob(__name__, "Deep"), pickle.BININT1 + b"\x00", pickle.TUPLE1, pickle.REDUCE),
            "a pickled object nests too deeply")


def test_an_allow_list_names_modules_and_plain_names_and_says_what_it_ignores():
    for module in ("a b", "1a", "a..b", "", 5):
        with pytest.raises(ValueError) as info:
            restricted.compile_allowed({module: ["X"]})
        assert str(info.value) == f"serializing_allowed_list: {module!r} is not a module name"
    with pytest.raises(ValueError) as info:
        restricted.compile_allowed({"m": ["A.b"]})
    assert str(info.value) == ("serializing_allowed_list['m']: 'A.b' is not a plain name. fed resolves exact names "
                               "only (never attribute paths like 'A.b'): list the module that defines the class")

    _, ignored = restricted.compile_allowed({"numpy.core.numeric": ["*"], "torch": ["Tensor"], "os": ["system"],
                                             "ok": ["X"]})
    assert ignored == ["numpy.core.numeric (not needed: fed carries arrays and tensors itself)",
                       "torch (not needed: fed carries arrays and tensors itself)",
                       "os (fed never resolves names from it)"]
