"""fed's codec: every type it carries comes back as it was; others are refused with what to do."""

from __future__ import annotations

import datetime
import os

import numpy as np
import pytest
from codec_values import ARRAYS, SCALARS, VALUES, same

from fed._config import parse_comm
from fed._serialization import codec, records, registry
from fed._serialization.errors import DecodeError, EncodeError
from fed._serialization.policy import Policy, make_policy
from fed._serialization.restricted import compile_allowed

DEFAULT = Policy()


def round_trip(value, policy=DEFAULT):
    encoded = codec.encode(value, policy.types)
    return codec.decode(encoded.segments, policy, encoded.copied)


@pytest.mark.parametrize("name", sorted(VALUES))
def test_every_carried_type_comes_back_as_it_was(name):
    value = VALUES[name]

    got = round_trip(value)

    assert same(got, value), (got, value)


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_arrays_come_back_with_their_dtype_shape_order_and_values(name):
    array = ARRAYS[name]

    got = round_trip(array)

    assert type(got) is np.ndarray and got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        assert got.flags.f_contiguous


@pytest.mark.parametrize("scalar", SCALARS, ids=lambda s: type(s).__name__)
def test_numpy_scalars_come_back_as_numpy_scalars(scalar):
    got = round_trip(scalar)

    assert type(got) is type(scalar) and got.dtype == scalar.dtype and got == scalar


def test_large_arrays_travel_out_of_band_and_are_rebuilt_over_the_segment_without_a_copy():
    array = np.arange(1_000_000, dtype=np.float64)

    segments, _ = codec.encode({"w": array, "small": np.ones(3)})
    got = codec.decode(segments, Policy())

    assert len(segments) == 2 and segments[1].nbytes == array.nbytes
    assert np.shares_memory(got["w"], np.frombuffer(segments[1], np.uint8))
    assert segments[0].nbytes < 1000  # the in-band part is only a description


def test_a_value_too_large_for_one_record_is_split_into_records_of_bounded_size():
    value = {"rows": [[i, f"r{i}", float(i)] for i in range(60_000)], "x": list(range(300_000))}

    segments, _ = codec.encode(value)

    data, pos, sizes = segments[0], 0, []
    while pos < len(data):
        size = int.from_bytes(data[pos + 1:pos + 5], "little")
        sizes.append(size)
        pos += records.HEAD + size
    assert len(sizes) > 5 and max(sizes) <= records.DOC_MAX
    assert codec.decode(segments, Policy()) == value


def test_shared_references_arrive_as_copies_and_a_value_holding_itself_is_refused():
    inner = [1, 2]
    got = round_trip([inner, inner])
    assert got == [[1, 2], [1, 2]] and got[0] is not got[1]

    loop: list = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="nests more than 100 levels"):
        codec.encode(loop)


class Point:
    def __init__(self, x):
        self.x = x


class Vector:
    def __init__(self, xs):
        self.xs = xs


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_an_object_of_another_class_is_refused_unless_the_receiver_lists_it():
    segments, _ = codec.encode(Point(1))

    with pytest.raises(DecodeError, match="class this party does not accept") as info:
        codec.decode(segments, Policy())
    assert "Point" not in str(info.value)  # the peer's data is not echoed in the public text

    listed = make_policy(registry.NONE, {__name__: ["Point"]}, unsafe=False)
    assert round_trip(Point(7), listed).x == 7


def test_an_exact_list_admits_only_the_classes_it_names_not_others_of_their_module():
    listed = make_policy(registry.NONE, {__name__: ["Point"]}, unsafe=False)
    assert round_trip(Point(1), listed).x == 1

    with pytest.raises(DecodeError, match="class this party does not accept") as info:
        round_trip(Vector([1]), listed)  # defined in the same module, not listed
    assert "Vector is not" in info.value.detail


def test_a_listed_class_holds_arrays_that_still_cross_through_the_array_path():
    listed = make_policy(registry.NONE, {__name__: ["Point"]}, unsafe=False)

    got = round_trip(Point({"w": np.arange(5.0), "s": np.float32(2), "t": datetime.date(2026, 1, 1)}), listed)

    np.testing.assert_array_equal(got.x["w"], np.arange(5.0))
    assert type(got.x["s"]) is np.float32 and got.x["t"] == datetime.date(2026, 1, 1)


def test_a_star_lists_the_classes_defined_in_a_module_and_nothing_it_imports():
    star = make_policy(registry.NONE, {__name__: ["*"]}, unsafe=False)
    assert round_trip(Point(1), star).x == 1

    segments, _ = codec.encode(Evil())  # os.system, reached by name from this module's globals
    with pytest.raises(DecodeError):
        codec.decode(segments, star)
    with pytest.raises(DecodeError):
        codec.decode(segments, make_policy(registry.NONE, {"os": ["system"], "posix": ["system"]}, unsafe=False))


def test_dotted_names_in_the_allow_list_are_refused_when_the_party_starts():
    with pytest.raises(ValueError, match="exact names only"):
        parse_comm({"serializing_allowed_list": {"builtins": ["__import__.os"]}})


def test_numpy_and_builtins_entries_of_a_rayfed_allow_list_are_ignored_and_reported():
    allowed, ignored = compile_allowed({"numpy.core.numeric": ["*"], "numpy": ["dtype"], "builtins": ["eval"],
                                        __name__: ["Point"]})

    assert [entry.split(" ")[0] for entry in ignored] == ["numpy.core.numeric", "numpy", "builtins"]
    assert not allowed.permits("builtins", "eval") and not allowed.permits("numpy", "dtype")
    assert allowed.permits(__name__, "Point") and allowed.permits("datetime", "date")


def test_unsafe_mode_unpickles_anything():
    unsafe = make_policy(registry.NONE, None, unsafe=True)

    assert round_trip(Point(3), unsafe).x == 3


def test_registered_types_cross_as_their_wire_parts():
    registry.unregister_all()
    try:
        registry.register_type(Vector, to_wire=lambda v: {"xs": v.xs}, from_wire=lambda p: Vector(p["xs"]))
        policy = Policy(types=registry.snapshot())

        got = round_trip({"v": Vector(np.arange(3.0)), "list": [Vector([1, 2])]}, policy)

        assert type(got["v"]) is Vector and list(got["v"].xs) == [0.0, 1.0, 2.0]
        assert got["list"][0].xs == [1, 2]
        with pytest.raises(DecodeError, match="registered type that this party has not registered"):
            codec.decode(codec.encode(Vector([1]), policy.types).segments, Policy())
    finally:
        registry.unregister_all()


def test_a_registered_name_is_bound_to_one_class():
    registry.unregister_all()
    try:
        registry.register_type(Vector, to_wire=list, from_wire=Vector, name="v")
        with pytest.raises(ValueError, match="already registered for another class"):
            registry.register_type(Point, to_wire=list, from_wire=Point, name="v")
        with pytest.raises(ValueError, match="invalid registered type name"):
            registry.register_type(Point, to_wire=list, from_wire=Point, name="a b")
    finally:
        registry.unregister_all()


def test_registering_while_fed_runs_is_an_error_that_says_when_to_register():
    registry.freeze("alice")
    try:
        with pytest.raises(RuntimeError, match="before fed.init"):
            registry.register_type(Vector, to_wire=list, from_wire=Vector)
    finally:
        registry.thaw()


@pytest.mark.parametrize("value, match", [
    (np.array([object()]), "dtype object"),
    (np.zeros(2, dtype=[("a", "i4")]), "structured"),
    (np.ma.masked_array([1, 2]), "subclass"),
    (datetime.datetime(2026, 1, 1, tzinfo=datetime.tzinfo()), "time zones"),
    (lambda: 1, "cannot be pickled"),
    (2 ** 70000, "bits"),
], ids=["object_array", "structured", "masked", "tzinfo", "lambda", "huge_int"])
def test_what_fed_cannot_carry_is_an_encode_error_that_says_what_to_do(value, match):
    with pytest.raises(EncodeError, match=match):
        codec.encode(value)


class _Leaky:
    def __getstate__(self):
        raise ValueError("patient-record-4711")


def _made_in_a_function():
    class Local:
        def __init__(self, x):
            self.x = x
    return Local(3)


def test_what_the_peer_is_told_of_an_encode_error_leaves_out_what_pickling_said():
    with pytest.raises(EncodeError) as info:
        codec.encode({"model": _Leaky()})

    assert "patient-record-4711" in str(info.value)  # this party's own log and handler
    assert "patient-record-4711" not in info.value.public
    assert info.value.public == (f"fed's codec does not carry {__name__}._Leaky and it cannot be pickled either "
                                 "(ValueError). Register it with fed.register_type at both parties, or send plain "
                                 "data (dicts, lists, arrays)")


def test_a_class_that_cannot_be_found_by_its_name_is_named_as_such():
    with pytest.raises(EncodeError) as info:
        codec.encode(_made_in_a_function())

    assert "Its class cannot be found by its name (it is defined inside a function" in info.value.public
    assert "Can't pickle" not in info.value.public and "Can't pickle" in str(info.value)


def test_by_value_a_class_made_in_a_function_crosses_to_a_party_that_unpickles_anything():
    array = np.arange(5.0)
    segments, copied = codec.encode([_made_in_a_function(), array], by_value=True)

    got, same_array = codec.decode(segments, Policy(unsafe=True), copied)
    assert got.x == 3 and type(got).__name__ == "Local"
    assert np.array_equal(same_array, array)  # arrays still cross as fed's own data
    with pytest.raises(DecodeError, match="class this party does not accept"):
        codec.decode(segments, Policy(), copied)  # a party without allow_unsafe_deserialization refuses it
    with pytest.raises(EncodeError, match="Send plain data"):
        codec.encode(__import__("threading").Lock(), by_value=True)


def test_long_bytes_and_str_are_declared_copied_and_may_only_be_read_as_such():
    encoded = codec.encode({"b": b"x" * 100_000, "s": "y" * 100_000, "a": np.ones(100_000)})

    assert encoded.copied == (1, 2)
    with pytest.raises(DecodeError, match="other than its header declared"):
        codec.decode(encoded.segments, Policy(), copied=(1,))  # the str segment, undeclared
    with pytest.raises(DecodeError, match="other than its header declared"):
        codec.decode(encoded.segments, Policy(), copied=(1, 2, 3))  # the array's segment declared copied
    assert codec.holding_bound([s.nbytes for s in encoded.segments], encoded.copied) > 4 * 100_000


DANGEROUS = {"builtins": "eval", "os": "system", "posix": "system", "nt": "system", "subprocess": "Popen",
             "sys": "exit", "importlib": "import_module", "pickle": "loads", "_pickle": "loads", "marshal": "loads",
             "ctypes": "CDLL", "shutil": "rmtree", "socket": "socket", "runpy": "run_path", "code": "interact",
             "pty": "spawn", "io": "open", "multiprocessing": "Process", "operator": "attrgetter",
             "functools": "partial", "types": "FunctionType", "copyreg": "_reconstructor", "inspect": "getattr_static",
             "asyncio": "run", "threading": "Thread", "tempfile": "mkdtemp", "pathlib": "Path", "signal": "signal",
             "webbrowser": "open", "numpy": "ndarray", "numpy.core.multiarray": "_reconstruct", "torch": "load",
             "ray": "get", "fed": "init", "cloudpickle": "loads", "pdb": "set_trace", "glob": "glob"}


@pytest.mark.parametrize("module", sorted(DANGEROUS))
def test_modules_that_run_code_are_never_opened_whatever_the_allow_list_says(module):
    name = DANGEROUS[module]
    allowed, ignored = compile_allowed({module: [name, "*"]})

    assert [entry.split(" ")[0] for entry in ignored] == [module]
    assert not allowed.permits(module, name)
