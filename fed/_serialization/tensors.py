"""Torch tensors on the wire as numpy data, so the receiver needs no torch code on its allow-list.

A tensor pickles (by ``reducer_override`` in ``codec``) as ``rebuild_tensor(array, dtype, shape,
requires_grad)``: its data as a numpy array — an out-of-band buffer, sent without a copy for a
contiguous CPU tensor — and the torch dtype by name. ``rebuild_tensor`` only looks up a
``torch.dtype`` by that name and views the array as a tensor; it runs no code the sender chose.
"""

from __future__ import annotations

import sys
from typing import Any


def torch_loaded() -> bool:
    """Whether torch is imported in this process (tensors can only exist if it is)."""
    return "torch" in sys.modules


def reduce_tensor(obj: Any) -> tuple | Any:
    """The reduction of a torch tensor (a Parameter becomes a plain tensor), else NotImplemented."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.Tensor):
        return NotImplemented
    t = obj.detach().cpu()
    dtype = str(t.dtype).removeprefix("torch.")
    try:
        return rebuild_tensor, (t.numpy(), dtype, None, obj.requires_grad)
    except TypeError:  # a dtype numpy does not have (bfloat16, float8...): send its bytes
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy()
        return rebuild_tensor, (raw, dtype, tuple(t.shape), obj.requires_grad)


def rebuild_tensor(array: Any, dtype: str, shape: tuple[int, ...] | None, requires_grad: bool) -> Any:
    """A tensor over ``array`` (no copy); ``shape`` is set when ``array`` holds raw bytes."""
    try:
        import torch
    except ImportError:
        raise ValueError("a torch tensor arrived but torch is not installed at this party") from None
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"unknown torch dtype {dtype!r}")
    tensor = torch.from_numpy(array)
    if shape is not None:
        tensor = tensor.view(torch_dtype).reshape(shape)
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor
