"""The edges of the torch tensors fed accepts from a peer (needs torch; skipped where it is not
installed, where a tensor from a peer is refused: the last test)."""

from __future__ import annotations

import sys

import pytest
from codec_payloads import M, one

from fed._serialization import codec, tags
from fed._serialization.arrays import MAX_DIMS
from fed._serialization.errors import DecodeError
from fed._serialization.policy import Policy

MALFORMED = "malformed tensor"


def array(dtype, shape, data):
    return [M[tags.NDARRAY], dtype, shape, False, data]


def tensor(name, shape, grad, arr):
    return [M[tags.TENSOR], name, shape, grad, arr]


def refused_exactly(obj, message):
    with pytest.raises(DecodeError) as info:
        codec.decode(one(obj), Policy())
    assert str(info.value) == message


def test_without_torch_a_tensor_is_refused_in_feds_words(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch fails, as where it is not installed

    refused_exactly(tensor("float32", None, False, array("<f4", [1], b"\x00" * 4)),
                    "a torch tensor arrived but torch is not installed at this party")


torch = pytest.importorskip("torch")
F32 = array("<f4", [2], b"\x00" * 8)


@pytest.mark.parametrize("parts", [
    ["float32", None, False],                          # four parts
    ["float32", None, False, F32, 1],                  # six
    [5, None, False, F32],                             # name not a str
    ["float128", None, False, F32],                    # not a torch dtype fed carries
    ["Tensor", None, False, F32],
    ["float32", None, 1, F32],                         # requires_grad not a bool
    ["float32", None, False, [1.0, 2.0]],              # data not an array
], ids=["short", "long", "int_name", "unknown_dtype", "not_a_dtype", "int_grad", "list_data"])
def test_a_tensors_parts_are_checked_each(parts):
    refused_exactly([M[tags.TENSOR], *parts], MALFORMED)


def test_a_tensor_comes_back_with_its_dtype_and_grad():
    got = codec.decode(one(tensor("float32", None, True, array("<f4", [2], b"\x00\x00\x80\x3f" * 2))), Policy())

    assert got.dtype == torch.float32 and got.requires_grad and got.tolist() == [1.0, 1.0]


def test_a_tensor_whose_array_has_another_dtype_is_refused():
    refused_exactly(tensor("float64", None, False, F32), "a tensor's data does not match its dtype")


def test_raw_bytes_take_a_shape_of_up_to_32_non_negative_dims():
    bf16 = codec.decode(one(tensor("bfloat16", [2], False, array("|u1", [4], b"\x80\x3f\x00\x40"))), Policy())
    assert bf16.dtype == torch.bfloat16 and bf16.tolist() == [1.0, 2.0]
    empty = codec.decode(one(tensor("bfloat16", [0, 3], False, array("|u1", [0], b""))), Policy())
    assert tuple(empty.shape) == (0, 3)
    deep = codec.decode(one(tensor("uint8", [1] * MAX_DIMS, False, array("|u1", [1], b"\x07"))), Policy())
    assert tuple(deep.shape) == (1,) * MAX_DIMS

    for shape in ([1] * (MAX_DIMS + 1), [-2], [2.0], "2", [True]):
        refused_exactly(tensor("uint8", shape, False, array("|u1", [1], b"\x07")), MALFORMED)


def test_raw_bytes_must_be_a_flat_uint8_array_of_the_right_size():
    refused_exactly(tensor("bfloat16", [2], False, array("<u2", [2], b"\x00" * 4)), MALFORMED)   # not bytes
    refused_exactly(tensor("bfloat16", [2], False, array("|u1", [2, 2], b"\x00" * 4)), MALFORMED)  # not flat
    refused_exactly(tensor("bfloat16", [3], False, array("|u1", [4], b"\x00" * 4)), MALFORMED)   # too few
    refused_exactly(tensor("int64", [1], False, array("|u1", [3], b"\x00" * 3)), MALFORMED)      # not whole items


def test_a_grad_on_an_integer_tensor_is_refused():
    refused_exactly(tensor("int64", None, True, array("<i8", [1], b"\x00" * 8)), MALFORMED)
