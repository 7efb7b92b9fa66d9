"""Encode a value into pickle-5 segments (in-band pickle + out-of-band buffers) and back."""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from typing import Any

from fed._serialization import tensors
from fed._serialization.allowlist import restricted_loads

PICKLE5 = "pickle5"


class _TensorPickler(pickle.Pickler):
    """Pickles torch tensors as numpy data (see ``tensors``); used only when torch is loaded."""

    def reducer_override(self, obj: Any) -> Any:
        return tensors.reduce_tensor(obj)


def encode(value: Any) -> list[memoryview]:
    """Segments of ``value``: the pickle stream, then each out-of-band buffer, none copied."""
    buffers: list[pickle.PickleBuffer] = []
    if tensors.torch_loaded():
        stream = io.BytesIO()
        _TensorPickler(stream, protocol=5, buffer_callback=buffers.append).dump(value)
        head = stream.getbuffer()
    else:
        head = memoryview(pickle.dumps(value, protocol=5, buffer_callback=buffers.append))
    return [head] + [b.raw() for b in buffers]


def decode(segments: list[memoryview], allowed: Mapping[str, frozenset[str]] | None) -> Any:
    """Rebuild a value from its segments; arrays are rebuilt over the segments, not copied.

    ``allowed=None`` is plain unpickling, which runs whatever code the sender chose: only for
    ``allow_unsafe_deserialization``.
    """
    if allowed is None:
        return pickle.loads(segments[0], buffers=segments[1:])
    return restricted_loads(segments[0], segments[1:], allowed)
