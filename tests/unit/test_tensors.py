"""Torch tensors cross with the default allow-list, as numpy data (skipped where torch is not installed)."""

from __future__ import annotations

import pickletools

import numpy as np
import pytest

from fed._serialization import codec
from fed._serialization.allowlist import DEFAULT_ALLOWED, RefusedValueError
from fed._serialization.tensors import rebuild_tensor

torch = pytest.importorskip("torch")


def round_trip(value):
    return codec.decode(codec.encode(value), DEFAULT_ALLOWED)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool,
                                   torch.float16, torch.bfloat16, torch.complex64])
def test_tensors_of_every_common_dtype_round_trip(dtype):
    tensor = (torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) % 3).to(dtype)

    got = round_trip(tensor)

    assert isinstance(got, torch.Tensor) and got.dtype == dtype and got.shape == tensor.shape
    assert torch.equal(got, tensor)


def test_no_torch_constructor_is_needed_at_the_receiver():
    segments = codec.encode({"w": torch.ones(3), "b": torch.zeros(2, dtype=torch.bfloat16)})

    strings = {arg for _, arg, _ in pickletools.genops(bytes(segments[0])) if isinstance(arg, str)}
    assert not any(s.startswith("torch") for s in strings), strings
    assert "fed._serialization.tensors" in strings


def test_a_large_tensor_travels_out_of_band_without_a_copy():
    tensor = torch.rand(1000, 1000)

    segments = codec.encode(tensor)
    got = codec.decode(segments, DEFAULT_ALLOWED)

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

    assert list(got) == list(model.state_dict())
    assert all(torch.equal(got[k], v) for k, v in model.state_dict().items())


def test_code_is_still_refused_when_torch_is_loaded():
    class Evil:
        def __reduce__(self):
            return (eval, ("1",))

    with pytest.raises(RefusedValueError, match="builtins.eval"):
        round_trip([torch.ones(1), Evil()])


def test_a_forged_rebuild_cannot_reach_other_torch_functions():
    with pytest.raises(ValueError, match="unknown torch dtype 'load'"):
        rebuild_tensor(np.zeros(3, dtype=np.uint8), "load", (3,), False)
