"""Torch tensors cross as numpy data plus a dtype name (skipped where torch is not installed)."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from fed._serialization import codec, records, tags
from fed._serialization.errors import DecodeError
from fed._serialization.policy import Policy

torch = pytest.importorskip("torch")


def round_trip(value):
    return codec.decode(codec.encode(value).segments, Policy())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool,
                                   torch.float16, torch.bfloat16, torch.complex64])
def test_tensors_of_every_common_dtype_round_trip(dtype):
    tensor = (torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) % 3).to(dtype)

    got = round_trip(tensor)

    assert isinstance(got, torch.Tensor) and got.dtype == dtype and got.shape == tensor.shape
    assert torch.equal(got, tensor)


def test_a_large_tensor_travels_out_of_band_without_a_copy():
    tensor = torch.rand(1000, 1000)

    segments, _ = codec.encode(tensor)
    got = codec.decode(segments, Policy())

    assert len(segments) == 2 and segments[1].nbytes == tensor.numel() * 4
    assert got.data_ptr() == np.frombuffer(segments[1], dtype=np.uint8).ctypes.data  # rebuilt over the segment
    assert torch.equal(got, tensor)


def test_parameters_and_views_become_plain_tensors_with_their_values():
    param = torch.nn.Parameter(torch.rand(4, 5))
    got = round_trip({"param": param, "view": param.detach().t()[1:3]})

    assert type(got["param"]) is torch.Tensor and got["param"].requires_grad
    assert torch.equal(got["param"].detach(), param.detach())
    assert torch.equal(got["view"], param.detach().t()[1:3])


def test_a_model_state_dict_round_trips():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    got = round_trip(model.state_dict())

    assert type(got) is type(model.state_dict()) and list(got) == list(model.state_dict())
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items())


def forged_tensor(name, shape=None):
    array = [tags.EXTS[tags.NDARRAY], "|u1", [3], False, b"abc"]
    out = bytearray()
    records.add(out, records.VALUE, msgpack.packb([tags.EXTS[tags.TENSOR], name, shape, False, array]))
    return [memoryview(out)]


@pytest.mark.parametrize("name, shape", [("load", [3]), ("float32", None), ("float32", [3]), ("bfloat16", [2, 2])])
def test_a_forged_tensor_names_only_dtypes_and_shapes_that_match_its_data(name, shape):
    with pytest.raises(DecodeError):
        codec.decode(forged_tensor(name, shape), Policy())
