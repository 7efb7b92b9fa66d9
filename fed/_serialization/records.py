"""The records of segment 0: msgpack documents of bounded size, so no single decoding step is long.

A record is one op byte, a 4-byte little-endian length, and that many bytes of body:

* ``VALUE``: a msgpack document holding one value;
* ``VALUES``: a msgpack array whose items extend the list or map being built;
* ``OPEN_LIST`` / ``OPEN_MAP`` (no body): a list (or tagged array) or a map too large for one
  document starts; its items follow, until
* ``CLOSE`` (no body): the innermost open list or map is complete.

Each body is at most ``DOC_MAX`` bytes, so decoding one record holds the interpreter for a bounded
time, however large the value.
"""

from __future__ import annotations

VALUE, VALUES, OPEN_LIST, OPEN_MAP, CLOSE = range(5)
DOC_MAX = 256 * 1024
MAX_SEGMENTS = 1 << 17  # segments of one value (records included); past them, buffers go inline
HEAD = 5


def add(out: bytearray, op: int, body: bytes = b"") -> None:
    """Append one record to ``out``."""
    out.append(op)
    out += len(body).to_bytes(4, "little")
    out += body
