"""Compression of a streamed push's data frames, per peer (docs/wire.md, "Compression").

Each data frame of a compressed push is one zstd frame holding exactly the payload bytes an
uncompressed frame would hold; acks and resumes count payload bytes, as without compression. The
receiver decompresses a frame straight into the push's buffer, whose size the header declared and
admission already checked against the caps: a frame must record its size, one that records more
than the rest of the declared payload is refused before any of it is decompressed, and a frame
is decompressed into that many bytes of the buffer only, so nothing beyond the admitted room is
ever allocated. The decompressor's own window is capped at ``MAX_WINDOW``.

zstd (the ``zstandard`` bindings, an optional dependency: ``pip install 'rayfed[compression]'``):
a well-kept codec with a C implementation that releases the GIL and decompresses into a
caller's buffer, which is what bounds the receiver's memory here.
"""

from __future__ import annotations

import threading
from typing import Any

NAMES = ("zstd",)
LEVELS = range(1, 20)
# The largest window a peer's frame may ask this receiver to keep (zstd's levels up to 19 stay
# within it); a frame that asks for more is refused, not decompressed.
MAX_WINDOW = 1 << 23
INSTALL = "pip install 'rayfed[compression]'"

_local = threading.local()  # zstd contexts are not to be shared between threads at once


class CompressionError(ValueError):
    """A frame that is not one valid compressed frame of at most the bytes it may hold."""


def _zstd() -> Any:
    import zstandard

    return zstandard


def available(name: str) -> bool:
    """Whether this party can compress and decompress with ``name``."""
    if name not in NAMES:
        return False
    try:
        _zstd()
    except ImportError:
        return False
    return True


def require(name: str, what: str) -> None:
    """``ValueError`` naming ``what`` (the setting) when ``name`` is unknown or not installed."""
    if name not in NAMES:
        raise ValueError(f"{what}: unknown compression {name!r}; fed compresses with {', '.join(NAMES)}")
    if not available(name):
        raise ValueError(f"{what}: {name} compression needs the zstandard package: {INSTALL}")


def compress(chunk: bytes, level: int) -> bytes:
    """One zstd frame of ``chunk`` (its size recorded in the frame)."""
    compressors = getattr(_local, "compressors", None)
    if compressors is None:
        compressors = _local.compressors = {}
    compressor = compressors.get(level)
    if compressor is None:
        compressor = compressors[level] = _zstd().ZstdCompressor(level=level)
    return compressor.compress(chunk)


def decompress_into(frame: bytes, view: memoryview) -> int:
    """Decompress one zstd frame into the start of ``view``; returns the bytes it held.

    The frame must record its size (fed's sender's do), at most ``len(view)``: that is checked
    before any of it is decompressed, and the frame is decompressed into ``view[:size]`` only, so a
    frame that lies about its size writes nothing outside it. ``CompressionError`` if ``frame`` is
    not one valid frame holding exactly the size it records, or asks for a window over ``MAX_WINDOW``.
    """
    zstd = _zstd()
    try:
        size = zstd.frame_content_size(frame)
    except zstd.ZstdError:
        raise CompressionError("not a valid zstd frame") from None
    if size < 0:
        raise CompressionError("a compressed frame must record its size")
    if size > len(view):
        raise CompressionError("a compressed frame holds more than the rest of the declared payload")
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstd.ZstdDecompressor(max_window_size=MAX_WINDOW)
    target, written = view[:size], 0
    try:
        with decompressor.stream_reader(frame) as reader:
            while written < size:
                n = reader.readinto(target[written:])
                if n == 0:
                    break
                written += n
            if written != size or reader.read(1):
                raise CompressionError("a compressed frame does not hold the size it records")
    except zstd.ZstdError:
        raise CompressionError("not a valid zstd frame") from None
    return written
