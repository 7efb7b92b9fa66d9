"""numpy arrays, numpy scalars and torch tensors as wire parts, and back (never numpy's unpickling).

An array crosses as its dtype string (``dtype.str``), its shape, its memory order and its raw
bytes: out of band (a segment of its own, sent and rebuilt without a copy) when large, in the
msgpack document when small. Only fixed-size dtypes cross — bool, ints, floats, complex,
datetime64/timedelta64 and fixed-width str/bytes — so an array from a peer never holds pointers
(object dtype) or fields at offsets the peer chose (structured dtypes). A torch tensor crosses as
such an array plus its torch dtype name; a dtype numpy does not have (bfloat16, float8) crosses
as raw bytes with the shape.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from fed._serialization import tags
from fed._serialization.errors import DecodeError, EncodeError

MAX_DIMS = 32
INLINE_MAX = 256  # array data up to this many bytes travels inside the msgpack document
_KINDS = frozenset("biufcMmSU")
_DTYPE = re.compile(r"[<>|=]?(b1|[iu][1248]|f(2|4|8|12|16)|c(8|16|24|32)|[SU][1-9][0-9]{0,8}"
                    r"|[Mm]8(\[[0-9]{0,4}(Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as)\])?)")
TORCH_DTYPES = frozenset({
    "bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
    "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
})

Oob = Callable[[memoryview], "int | None"]  # a buffer as a segment of its own: its index (None: no more segments)


def check_dtype(dtype: np.dtype) -> None:
    """``EncodeError`` unless arrays of ``dtype`` can cross."""
    if dtype.hasobject or dtype.kind == "O":
        raise EncodeError("numpy arrays of dtype object cannot cross (they hold pointers, not data); "
                          "convert them to a fixed-size dtype or to a list")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _KINDS:
        raise EncodeError(f"numpy dtype {dtype} is not carried by fed's codec (structured and void dtypes "
                          "are not): send each field as its own array, or register a type")
    if dtype.itemsize == 0:
        raise EncodeError(f"numpy dtype {dtype} has no size")


def array_to_wire(array: np.ndarray, oob: Oob) -> list:
    """``[NDARRAY, dtype, shape, fortran, data]``; data is bytes or the index of a segment."""
    check_dtype(array.dtype)
    fortran = not array.flags.c_contiguous and array.flags.f_contiguous and array.ndim > 1
    if not (array.flags.c_contiguous or fortran):
        array = np.ascontiguousarray(array)
    memory = array.T if fortran else array  # C-contiguous either way
    raw = memoryview(memory.reshape(-1).view(np.uint8))  # also for dtypes with no buffer format (datetime64)
    data = oob(raw) if raw.nbytes > INLINE_MAX else None
    if data is None:
        data = raw.tobytes()
    return [tags.EXTS[tags.NDARRAY], array.dtype.str, list(array.shape), fortran, data]


def scalar_to_wire(scalar: np.generic) -> list:
    """``[NUMPY_SCALAR, dtype, bytes]``."""
    check_dtype(scalar.dtype)
    return [tags.EXTS[tags.NUMPY_SCALAR], scalar.dtype.str, scalar.tobytes()]


@functools.lru_cache(maxsize=256)
def _dtype(text: str) -> np.dtype:
    dtype = np.dtype(text)
    if (dtype.kind not in _KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None
            or dtype.itemsize == 0):
        raise ValueError("dtype not carried")
    return dtype


def dtype_from_wire(text: Any) -> np.dtype:
    """The dtype a peer names, if it is one that may cross; else ``DecodeError``."""
    if type(text) is not str or len(text) > 24 or not _DTYPE.fullmatch(text):
        raise DecodeError("an array names a dtype that fed does not accept")
    try:
        return _dtype(text)
    except (TypeError, ValueError):
        raise DecodeError("an array names a dtype that fed does not accept") from None


def array_from_wire(parts: list, segment: Callable[[int], memoryview]) -> np.ndarray:
    """The array ``array_to_wire`` described, over its segment when it came out of band."""
    if len(parts) != 5:
        raise DecodeError("malformed array")
    _, dtype_text, shape, fortran, data = parts
    dtype = dtype_from_wire(dtype_text)
    if (type(shape) is not list or len(shape) > MAX_DIMS or not all(type(d) is int and d >= 0 for d in shape)
            or type(fortran) is not bool):
        raise DecodeError("malformed array shape")
    count = 1
    for dim in shape:
        count *= dim
    if type(data) is int:
        buffer = segment(data)
    elif type(data) is bytes:
        buffer = memoryview(bytearray(data))  # writable, as arrays that came out of band are
    else:
        raise DecodeError("malformed array data")
    if count * dtype.itemsize != buffer.nbytes:
        raise DecodeError("an array's data does not match its shape and dtype")
    try:
        flat = np.frombuffer(buffer, dtype=dtype, count=count)
        array = flat.reshape(shape, order="F" if fortran else "C")
    except (ValueError, TypeError):
        raise DecodeError("malformed array shape") from None
    _check_values(flat)
    return array


def scalar_from_wire(parts: list) -> np.generic:
    if len(parts) != 3 or type(parts[2]) is not bytes:
        raise DecodeError("malformed numpy scalar")
    dtype = dtype_from_wire(parts[1])
    if len(parts[2]) != dtype.itemsize:
        raise DecodeError("a numpy scalar's data does not match its dtype")
    array = np.frombuffer(parts[2], dtype=dtype)
    _check_values(array)
    return array[0]


def _check_values(flat: np.ndarray) -> None:
    """Bytes a dtype forbids, in a 1-d array: bools other than 0/1, code points beyond Unicode."""
    if not flat.size:
        return
    if flat.dtype.kind == "b" and flat.view(np.uint8).max() > 1:
        raise DecodeError("a bool array holds values other than 0 and 1")
    if flat.dtype.kind == "U":
        codes = flat.view(flat.dtype.byteorder + "u4")
        if codes.max() > 0x10FFFF:
            raise DecodeError("a str array holds code points beyond Unicode")


def is_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def tensor_to_wire(obj: Any, oob: Oob) -> list:
    """``[TENSOR, dtype name, shape or None, requires_grad, array]`` (a Parameter becomes a tensor)."""
    import torch

    t = obj.detach().cpu().resolve_conj().resolve_neg()
    if t.layout != torch.strided:
        raise EncodeError(f"torch tensors with layout {t.layout} are not carried; send t.to_dense()")
    name = str(t.dtype).removeprefix("torch.")
    if name not in TORCH_DTYPES:
        raise EncodeError(f"torch dtype {t.dtype} is not carried by fed's codec")
    try:
        return [tags.EXTS[tags.TENSOR], name, None, obj.requires_grad, array_to_wire(t.numpy(), oob)]
    except TypeError:  # a dtype numpy does not have: its bytes
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy()
        return [tags.EXTS[tags.TENSOR], name, list(t.shape), obj.requires_grad, array_to_wire(raw, oob)]


def tensor_from_wire(parts: list) -> Any:
    """A CPU tensor over the array (no copy)."""
    if len(parts) != 5 or type(parts[1]) is not str or parts[1] not in TORCH_DTYPES \
            or type(parts[3]) is not bool or not isinstance(parts[4], np.ndarray):
        raise DecodeError("malformed tensor")
    try:
        import torch
    except ImportError:
        raise DecodeError("a torch tensor arrived but torch is not installed at this party") from None
    _, name, shape, requires_grad, array = parts
    dtype = getattr(torch, name)
    try:
        if shape is None:
            tensor = torch.from_numpy(array)
        elif type(shape) is list and len(shape) <= MAX_DIMS and all(type(d) is int and d >= 0 for d in shape) \
                and array.dtype == np.uint8 and array.ndim == 1:
            tensor = torch.from_numpy(array).view(dtype).reshape(shape)
        else:
            raise DecodeError("malformed tensor")
        if tensor.dtype != dtype:
            raise DecodeError("a tensor's data does not match its dtype")
        if requires_grad:
            tensor.requires_grad_(True)
    except DecodeError:
        raise
    except (RuntimeError, TypeError, ValueError):
        raise DecodeError("malformed tensor") from None
    return tensor
