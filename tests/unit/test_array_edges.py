"""The edges of the arrays and numpy scalars fed accepts from a peer: each check refuses in its
own words, and each limit admits its last value."""

from __future__ import annotations

import numpy as np
import pytest
from codec_payloads import M, one

from fed._serialization import codec, tags
from fed._serialization.arrays import MAX_DIMS, dtype_from_wire
from fed._serialization.errors import DecodeError
from fed._serialization.policy import Policy


def array(dtype, shape, data, fortran=False):
    return [M[tags.NDARRAY], dtype, shape, fortran, data]


def decode(segments):
    return codec.decode(segments, Policy())


def refused_exactly(segments, message):
    with pytest.raises(DecodeError) as info:
        decode(segments)
    assert str(info.value) == message


BAD_DTYPE = "an array names a dtype that fed does not accept"
NO_MATCH = "an array's data does not match its shape and dtype"


@pytest.mark.parametrize("text", ["<f8", ">i2", "|b1", "=u4", "<c16", "<U3", "|S1", "<M8[ns]", "<m8", "f8",
                                  "<U99999", "<M8[25us]"])
def test_dtypes_of_fixed_size_are_named_by_their_str(text):
    assert dtype_from_wire(text) == np.dtype(text)


@pytest.mark.parametrize("text", ["<f8 ", " <f8", "<f3", "|O", "|V8", "<U0", "<U01", "<U1234567890", "<M8[D", "<M8[y]",
                                  "f8,i4", "(2,)f8", "<M8[12345Y]", "", "<" * 25, 8, None, b"<f8"])
def test_every_other_dtype_text_is_refused(text):
    with pytest.raises(DecodeError) as info:
        dtype_from_wire(text)
    assert str(info.value) == BAD_DTYPE


def test_a_dtype_text_is_at_most_24_chars():
    assert len("<M8[1234us]") <= 24  # the longest the pattern takes: well inside the limit
    with pytest.raises(DecodeError):
        dtype_from_wire("<U" + "9" * 23)  # 25 chars


def test_an_array_may_have_32_dimensions_and_not_33():
    got = decode(one(array("|u1", [1] * MAX_DIMS, b"\x05")))
    assert got.shape == (1,) * MAX_DIMS and got.ravel()[0] == 5

    refused_exactly(one(array("|u1", [1] * (MAX_DIMS + 1), b"\x05")), "malformed array shape")


@pytest.mark.parametrize("shape, fortran", [((2,), 1), ((2,), None), ({"a": 1}, False), ([2.0], False),
                                            ([True, 2], False), ([-2, -1], False), ((2,), "yes")],
                         ids=["fortran_int", "fortran_none", "shape_map", "float_dim", "bool_dim", "negative",
                              "fortran_str"])
def test_a_shape_is_a_list_of_non_negative_ints_and_the_order_a_bool(shape, fortran):
    refused_exactly(one(array("|u1", list(shape) if isinstance(shape, tuple) else shape, b"\x01\x02", fortran)),
                    "malformed array shape")


@pytest.mark.parametrize("data", ["\x01\x02", 1.0, None, [1, 2]], ids=["str", "float", "none", "list"])
def test_array_data_is_bytes_or_a_segment(data):
    refused_exactly(one(array("|u1", [2], data)), "malformed array data")


def test_the_data_must_be_exactly_what_the_shape_and_dtype_take():
    assert decode(one(array("<i2", [2, 3], bytes(12)))).shape == (2, 3)
    refused_exactly(one(array("<i2", [2, 3], bytes(11))), NO_MATCH)
    refused_exactly(one(array("<i2", [2, 3], bytes(13))), NO_MATCH)
    assert decode(one(array("<f8", [], bytes(8)))).shape == ()


def test_an_array_comes_back_in_its_memory_order_over_its_segment():
    data = np.arange(6, dtype="<f8").tobytes()
    c = decode(one(array("<f8", [2, 3], 1), data))
    f = decode(one(array("<f8", [2, 3], 1, fortran=True), data))

    np.testing.assert_array_equal(c, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(f, np.arange(6.0).reshape(2, 3, order="F"))
    assert f.flags.f_contiguous and not f.flags.c_contiguous and c.flags.c_contiguous
    assert c.flags.writeable and decode(one(array("|u1", [1], b"\x01"))).flags.writeable


def test_bool_arrays_hold_only_zero_and_one():
    np.testing.assert_array_equal(decode(one(array("|b1", [3], b"\x00\x01\x01"))), [False, True, True])
    refused_exactly(one(array("|b1", [3], b"\x00\x01\x02")), "a bool array holds values other than 0 and 1")
    refused_exactly(one(array("|b1", [1], b"\xff")), "a bool array holds values other than 0 and 1")
    assert decode(one(array("|b1", [0], b""))).shape == (0,)


@pytest.mark.parametrize("order", ["<", ">"])
def test_str_arrays_hold_only_unicode_code_points_in_either_byte_order(order):
    last = (0x10FFFF).to_bytes(4, "little" if order == "<" else "big")
    beyond = (0x110000).to_bytes(4, "little" if order == "<" else "big")

    assert decode(one(array(f"{order}U1", [1], last)))[0] == "\U0010ffff"
    refused_exactly(one(array(f"{order}U1", [2], last + beyond)), "a str array holds code points beyond Unicode")
    assert decode(one(array(f"{order}U2", [0], b""))).shape == (0,)


def test_a_numpy_scalar_is_its_dtype_and_exactly_its_bytes():
    assert decode(one([M[tags.NUMPY_SCALAR], "<i4", (7).to_bytes(4, "little")])) == np.int32(7)
    assert type(decode(one([M[tags.NUMPY_SCALAR], "|b1", b"\x01"]))) is np.bool_
    refused_exactly(one([M[tags.NUMPY_SCALAR], "<i4", b"\x00" * 5]), "a numpy scalar's data does not match its dtype")
    refused_exactly(one([M[tags.NUMPY_SCALAR], "<i4", b"\x00" * 3]), "a numpy scalar's data does not match its dtype")
    refused_exactly(one([M[tags.NUMPY_SCALAR], "<i4", 7]), "malformed numpy scalar")
    refused_exactly(one([M[tags.NUMPY_SCALAR], "<i4"]), "malformed numpy scalar")
    refused_exactly(one([M[tags.NUMPY_SCALAR], "<i4", b"\x00" * 4, 1]), "malformed numpy scalar")
    refused_exactly(one([M[tags.NUMPY_SCALAR], "|b1", b"\x02"]), "a bool array holds values other than 0 and 1")
    refused_exactly(one([M[tags.NUMPY_SCALAR], "<U1", b"\x00\x00\x11\x00"]),
                    "a str array holds code points beyond Unicode")


@pytest.mark.parametrize("parts", [["<f8", [1], False], ["<f8", [1], False, b"\x00" * 8, 1]], ids=["short", "long"])
def test_an_array_has_exactly_its_four_parts(parts):
    refused_exactly(one([M[tags.NDARRAY], *parts]), "malformed array")
