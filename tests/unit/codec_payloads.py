"""Hand-made payloads for the decoder's tests: records around msgpack documents, and raw pickle
streams for the restricted unpickler."""

from __future__ import annotations

import pickle

import msgpack

from fed._serialization import records, tags

M = tags.EXTS  # the marker of each tag, as the first item of a tagged array


def one(obj, *oob: bytes) -> list[memoryview]:
    """Segments of a payload whose records are one VALUE document of ``obj``, then ``oob``."""
    out = bytearray()
    records.add(out, records.VALUE, msgpack.packb(obj, use_bin_type=True))
    return [memoryview(out), *(memoryview(bytearray(b)) for b in oob)]


def raw(*recs: tuple[int, bytes], oob: tuple[bytes, ...] = ()) -> list[memoryview]:
    """Segments of a payload made of the records ``(op, body)``, then ``oob``."""
    out = bytearray()
    for op, body in recs:
        records.add(out, op, body)
    return [memoryview(out), *(memoryview(bytearray(b)) for b in oob)]


def pickled(stream: bytes, objects=()) -> list[memoryview]:
    """A payload holding one PICKLED value: ``stream`` and the carried objects it names."""
    return one([M[tags.PICKLED], stream, list(objects)])


def ops(*parts: bytes) -> bytes:
    """A protocol-4 pickle stream from raw opcodes."""
    return b"\x80\x04" + b"".join(parts) + b"."


def text(s: str) -> bytes:
    return pickle.SHORT_BINUNICODE + bytes([len(s)]) + s.encode()


def glob(module: str, name: str) -> bytes:
    return text(module) + text(name) + pickle.STACK_GLOBAL
