"""Values to wire segments and back with fed's own codec: no pickle, bounded decoding (docs/wire.md).

``encode`` turns a value into segments: segment 0 holds msgpack records (``records``) describing
the value, the others hold large buffers (array data, long bytes and strings) that are sent as
they are and rebuilt without a copy. ``decode`` is the inverse, for segments from a peer: it
accepts only the types in ``tags``, registered types (``registry``) and, where this party lists
their class, restricted pickles (``restricted``); everything else is a ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fed._serialization import decoder, encoder
from fed._serialization.encoder import Encoded
from fed._serialization.errors import DecodeError, EncodeError
from fed._serialization.policy import Policy
from fed._serialization.registry import NONE, Types

NAME = "fed"
SEGMENT_COST = 256  # bytes this party holds per segment besides its data (a memoryview and its slot)

__all__ = ["NAME", "DecodeError", "EncodeError", "Encoded", "Policy", "decode", "encode", "holding_bound"]


def encode(value: Any, types: Types = NONE, by_value: bool = False) -> Encoded:
    """Segments of ``value`` and which are copied out at the receiver (``EncodeError`` if it holds
    something fed cannot carry). ``by_value``: pickle the rest with cloudpickle (only for peers
    that set ``allow_unsafe_deserialization``)."""
    return encoder.encode(value, types, by_value)


def decode(segments: list[memoryview], policy: Policy, copied: tuple[int, ...] = ()) -> Any:
    """The value of segments from a peer; arrays are rebuilt over the segments, not copied."""
    return decoder.decode(segments, policy, copied)


def holding_bound(sizes: Sequence[int], copied: Sequence[int] = ()) -> int:
    """The most memory decoding a value of segments ``sizes`` makes the receiver hold beyond the
    payload itself: what its records can expand to, bytes and str copied out of segments
    ``copied`` (twice: a long str is decoded in pieces, then joined), and a little per segment."""
    if not sizes:
        return 0
    return (decoder.MEMORY_PER_INBAND_BYTE * sizes[0] + SEGMENT_COST * len(sizes)
            + 2 * sum(sizes[i] for i in copied if 0 < i < len(sizes)))
