"""The wire format of a push: a versioned header frame, then the payload in chunks (docs/wire.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

MAGIC = b"RFED"
VERSION = 1
ALIGN = 64
MAX_SEGMENTS = 1 << 20
MAX_HEADER_BYTES = 1 << 20
PUSH_METHOD = "/fed.Receiver/Push"
PUSH_WHOLE_METHOD = "/fed.Receiver/PushWhole"
PING_METHOD = "/fed.Receiver/Ping"
BYE_METHOD = "/fed.Receiver/Bye"
CALLS_METHOD = "/fed.Receiver/Calls"
BYE_KINDS = ("finished", "aborted", "diverged")
CODECS = ("pickle5", "error")
ACK = b"A"
FINAL_ANSWERS = (b"ok", b"duplicate")
# Trailing metadata of a push refused as UNAVAILABLE only because the receiver holds too many
# values its program has not consumed yet: the sender waits and tries again, without giving up,
# for as long as the receiver answers so.
NO_ROOM = (("fed-refused", "no-room"),)


def is_no_room(trailing_metadata) -> bool:
    """Whether a refusal carries ``NO_ROOM``."""
    return any(tuple(item) == NO_ROOM[0] for item in trailing_metadata or ())


class WireError(ValueError):
    """A frame that does not follow the wire format."""


@dataclass(frozen=True)
class Header:
    """What a push says about the value before any of its bytes."""

    job: str
    src: str
    dst: str
    object_id: str
    fingerprint: str
    codec: str
    segments: tuple[int, ...]

    @property
    def total_size(self) -> int:
        """Payload bytes: every segment, each starting at a multiple of ``ALIGN``."""
        return layout(self.segments)[-1] if self.segments else 0


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def layout(sizes: Iterable[int]) -> list[int]:
    """Start offsets of each segment followed by the end of the last one."""
    offsets, end = [], 0
    for size in sizes:
        start = _align(end)
        offsets.append(start)
        end = start + size
    return offsets + [end]


def encode_header(header: Header) -> bytes:
    """``MAGIC``, one version byte, then the header as UTF-8 JSON."""
    body = asdict(header)
    body["segments"] = list(header.segments)
    return MAGIC + bytes([VERSION]) + json.dumps(body, separators=(",", ":")).encode()


def decode_header(frame: bytes) -> Header:
    """Parse and validate a header frame; anything malformed is a ``WireError``."""
    if len(frame) > MAX_HEADER_BYTES:
        raise WireError(f"header frame of {len(frame)} bytes exceeds {MAX_HEADER_BYTES}")
    if frame[:4] != MAGIC:
        raise WireError("not a fed push: bad magic")
    if len(frame) < 5 or frame[4] != VERSION:
        raise WireError(f"unsupported wire version {frame[4] if len(frame) > 4 else None}; this side speaks {VERSION}")
    try:
        body = json.loads(bytes(frame[5:]).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"header is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WireError("header must be a JSON object")
    fields = ("job", "src", "dst", "object_id", "fingerprint", "codec")
    for name in fields:
        if not isinstance(body.get(name), str):
            raise WireError(f"header field {name!r} must be a string")
    if body["codec"] not in CODECS:
        raise WireError(f"unknown codec {body['codec']!r}")
    segments = body.get("segments")
    if (
        not isinstance(segments, list)
        or not 0 < len(segments) <= MAX_SEGMENTS
        or not all(type(s) is int and s >= 0 for s in segments)
    ):
        raise WireError("header field 'segments' must be a non-empty list of non-negative sizes")
    extra = set(body) - set(fields) - {"segments"}
    if extra:
        raise WireError(f"unknown header fields {sorted(extra)}")
    return Header(**{k: body[k] for k in fields}, segments=tuple(segments))


def iter_payload(segments: list[memoryview], chunk_size: int) -> Iterator[bytes]:
    """The payload laid out by ``layout`` as chunks of ``chunk_size`` bytes (the last may be short).

    Each chunk is copied once from the segments; the whole payload never exists in one piece.
    """
    pending = bytearray()
    end = 0
    for seg in segments:
        seg = seg.cast("B") if seg.format != "B" or seg.ndim != 1 else seg
        pending += bytes(_align(end) - end)
        while len(pending) >= chunk_size:
            yield bytes(pending[:chunk_size])
            del pending[:chunk_size]
        pos = 0
        while pos < len(seg):
            if not pending and len(seg) - pos >= chunk_size:
                yield bytes(seg[pos:pos + chunk_size])
                pos += chunk_size
                continue
            take = min(chunk_size - len(pending), len(seg) - pos)
            pending += seg[pos:pos + take]
            pos += take
            if len(pending) == chunk_size:
                yield bytes(pending)
                pending.clear()
        end = _align(end) + len(seg)
    if pending:
        yield bytes(pending)


def encode_whole(head: bytes, segments: list[memoryview]) -> bytes:
    """A value in one message: the header frame's length (4 bytes, little-endian), it, the payload."""
    return len(head).to_bytes(4, "little") + head + b"".join(iter_payload(segments, 1 << 62))


def decode_whole(message: bytes) -> tuple[bytes, memoryview]:
    """Split a one-message push into its header frame and its payload."""
    size = int.from_bytes(message[:4], "little")
    if len(message) < 4 + size:
        raise WireError("one-message push shorter than its header length")
    view = memoryview(message)
    return bytes(view[4:4 + size]), view[4 + size:]


def split_payload(payload: memoryview, sizes: tuple[int, ...]) -> list[memoryview]:
    """Views of each segment inside an assembled payload (no copy)."""
    offsets = layout(sizes)
    return [payload[start:start + size] for start, size in zip(offsets, sizes)]


def encode_ack(received: int) -> bytes:
    """The receiver's acknowledgement: payload bytes received so far."""
    return ACK + received.to_bytes(8, "little")


def decode_ack(message: bytes) -> int | None:
    """Bytes acknowledged, or None when ``message`` is the final answer rather than an ack."""
    if len(message) == 9 and message[:1] == ACK:
        return int.from_bytes(message[1:], "little")
    return None


def encode_ping(job: str, src: str, calls: int = 0) -> bytes:
    """A ping asks a receiver which party and job it serves; ``calls`` is how many calls of the
    pinging party's program its receiver knows (the answer then carries the digest to compare)."""
    return json.dumps({"job": job, "src": src, "calls": calls}).encode()


def encode_bye(job: str, src: str, kind: str, error_type: str = "", cause: str | None = None) -> bytes:
    """A goodbye: ``src`` sends nothing more in ``job``, because its program ``finished`` or ``aborted``."""
    return json.dumps({"job": job, "src": src, "kind": kind, "error_type": error_type, "cause": cause}).encode()


def decode_json(frame: bytes, what: str) -> dict:
    """Decode a small JSON control frame (ping or its answer)."""
    try:
        body = json.loads(bytes(frame).decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WireError(f"malformed {what}") from None
    if not isinstance(body, dict):
        raise WireError(f"malformed {what}")
    return body
