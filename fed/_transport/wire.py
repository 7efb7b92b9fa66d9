"""The wire format of a push: a versioned header frame, then the payload in chunks (docs/wire.md)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fed._serialization import records

MAGIC = b"RFED"
VERSION = 2
ALIGN = 64
MAX_SEGMENTS = records.MAX_SEGMENTS
MAX_HEADER_BYTES = 1 << 20
MAX_CONTROL_BYTES = 64 * 1024  # pings, goodbyes, calls requests and their answers (not digests)
MAX_ERROR_BYTES = 1 << 20      # an error frame (its cause may hold a trace)
MAX_ERROR_CAUSE = 64 * 1024
MAX_SIZE = 1 << 62
_PARTY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_JOB = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
BYE_KINDS = ("finished", "aborted", "diverged")
CODECS = ("fed", "error")
COMPRESSIONS = ("zstd",)  # of a push's data frames (``fed._transport.compression``)
ACK = b"A"
FINAL_ANSWERS = (b"ok", b"duplicate")
LANE_REFUSED = b"R"
MAX_LANE_TEXT = 1024  # characters of a refusal's text on a lane
MAX_OBJECT_ID = 256
# At most this many of the values a party waits for ride on one ping (the oldest waits first).
MAX_WAITS = 16


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
    copied: tuple[int, ...] = ()  # segments the receiver copies out (bytes, str) instead of viewing
    resume: bool = False  # a try after a broken one: continue where the receiver's first ack says
    compression: str | None = None  # its data frames are compressed so (a streamed push only)

    @cached_property
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
    body = {"job": header.job, "src": header.src, "dst": header.dst, "object_id": header.object_id,
            "fingerprint": header.fingerprint, "codec": header.codec, "segments": list(header.segments),
            "copied": list(header.copied)}
    if header.resume:
        body["resume"] = True
    if header.compression is not None:
        body["compression"] = header.compression
    return MAGIC + bytes([VERSION]) + json.dumps(body, separators=(",", ":")).encode()


def decode_header(frame: bytes) -> Header:
    """Parse and validate a header frame; anything malformed is a ``WireError`` (its text names
    what was wrong, never what the frame held)."""
    if len(frame) > MAX_HEADER_BYTES:
        raise WireError(f"header frame over {MAX_HEADER_BYTES} bytes")
    if frame[:4] != MAGIC:
        raise WireError("not a fed push: bad magic")
    if len(frame) < 5 or frame[4] != VERSION:
        raise WireError(f"unsupported wire version; this party speaks version {VERSION}")
    body = loads(frame[5:], "header", MAX_HEADER_BYTES)
    fields = ("job", "src", "dst", "object_id", "fingerprint", "codec")
    extra = set(body) - set(fields) - {"segments", "copied", "resume", "compression"}
    if extra:
        raise WireError("unknown header fields")
    for name in fields:
        if not isinstance(body.get(name), str):
            raise WireError(f"header field {name!r} must be a string")
    if not _JOB.fullmatch(body["job"]):
        raise WireError("header field 'job' is not a job name")
    for name in ("src", "dst"):
        if not _PARTY.fullmatch(body[name]):
            raise WireError(f"header field {name!r} is not a party name")
    if not printable(body["object_id"], MAX_OBJECT_ID) or not printable(body["fingerprint"], 1024):
        raise WireError("header fields 'object_id' (up to 256) and 'fingerprint' (up to 1024) must be "
                        "printable text")
    if body["codec"] not in CODECS:
        raise WireError("unknown codec")
    segments = body.get("segments")
    if (
        not isinstance(segments, list)
        or not 0 < len(segments) <= MAX_SEGMENTS
        or not all(type(s) is int and 0 <= s < MAX_SIZE for s in segments)
    ):
        raise WireError(f"header field 'segments' must be a list of 1 to {MAX_SEGMENTS} sizes")
    copied = body.get("copied", [])
    if (
        not isinstance(copied, list)
        or not all(type(i) is int and 0 < i < len(segments) for i in copied)
        or any(a >= b for a, b in zip(copied, copied[1:]))
    ):
        raise WireError("header field 'copied' must list segment numbers in increasing order")
    resume = body.get("resume", False)
    if type(resume) is not bool:
        raise WireError("header field 'resume' must be true or false")
    compression = body.get("compression")
    if compression is not None and compression not in COMPRESSIONS:
        raise WireError(f"header field 'compression' must be one of {', '.join(COMPRESSIONS)}")
    return Header(**{k: body[k] for k in fields}, segments=tuple(segments), copied=tuple(copied), resume=resume,
                  compression=compression)


def printable(text: Any, limit: int) -> bool:
    """A non-empty string of at most ``limit`` printable characters (no newlines or controls)."""
    return isinstance(text, str) and 0 < len(text) <= limit and text.isprintable()


def is_party(name: Any) -> bool:
    return isinstance(name, str) and _PARTY.fullmatch(name) is not None


def _small_int(text: str) -> int:
    if len(text) > 20:
        raise ValueError("integer too long")
    return int(text)


def _no_constant(text: str) -> Any:
    raise ValueError("not JSON")


def loads(frame: bytes | memoryview, what: str, limit: int = MAX_CONTROL_BYTES) -> dict:
    """A JSON object of at most ``limit`` bytes; integers of at most 20 digits, no NaN, nesting
    within Python's recursion limit. Anything else is a ``WireError`` naming ``what``."""
    if len(frame) > limit:
        raise WireError(f"{what} over {limit} bytes")
    try:
        body = json.loads(bytes(frame).decode("utf-8"), parse_int=_small_int, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError):
        raise WireError(f"malformed {what}: not a JSON object of the expected form") from None
    if not isinstance(body, dict):
        raise WireError(f"malformed {what}: not a JSON object")
    return body


def iter_payload(segments: list[memoryview], chunk_size: int, start: int = 0) -> Iterator[bytes]:
    """The payload laid out by ``layout`` from byte ``start`` on, as chunks of ``chunk_size`` bytes
    (the last may be short).

    Each chunk is copied once from the segments; the whole payload never exists in one piece, and
    what lies before ``start`` is not read.
    """
    pending = bytearray()
    end = 0  # the payload offset just past the last segment
    for seg in segments:
        seg = seg.cast("B") if seg.format != "B" or seg.ndim != 1 else seg
        previous, begin = end, _align(end)
        end = begin + len(seg)
        if end <= start:
            continue
        pending += bytes(max(0, begin - max(previous, start)))  # the padding before the segment
        while len(pending) >= chunk_size:
            yield bytes(pending[:chunk_size])
            del pending[:chunk_size]
        pos = max(0, start - begin)
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
    if pending:
        yield bytes(pending)


def encode_whole(head: bytes, segments: list[memoryview]) -> bytes:
    """A value in one message: the header frame's length (4 bytes, little-endian), it, the payload."""
    return len(head).to_bytes(4, "little") + head + b"".join(iter_payload(segments, 1 << 62))


def decode_whole(message: bytes) -> tuple[bytes, memoryview]:
    """Split a one-message push into its header frame and its payload."""
    if len(message) < 4:
        raise WireError("one-message push shorter than its length field")
    size = int.from_bytes(message[:4], "little")
    if len(message) < 4 + size:
        raise WireError("one-message push shorter than its header length")
    view = memoryview(message)
    return bytes(view[4:4 + size]), view[4 + size:]


def payload_size(segments: Sequence[memoryview]) -> int:
    """The payload bytes a push of ``segments`` declares (each segment aligned, see ``layout``)."""
    return layout(s.nbytes for s in segments)[-1]


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


def encode_lane_answer(answer: bytes) -> bytes:
    """The receiver's answer to one push on a lane (``Pushes``): ``ok`` or ``duplicate``."""
    return answer


def encode_lane_refusal(code: str, text: str, no_room: bool = False) -> bytes:
    """The receiver's refusal of one push on a lane: ``R`` and JSON ``{"code", "text", "no_room"}``
    (the lane goes on; a call of its own would end with that status)."""
    return LANE_REFUSED + json.dumps({"code": code, "text": text[:MAX_LANE_TEXT], "no_room": no_room}).encode()


def decode_lane_answer(frame: bytes) -> tuple[bytes | None, tuple[str, str, bool] | None]:
    """``(answer, None)`` for a push taken, ``(None, (code, text, no_room))`` for one refused; the
    text is the receiver's, untrusted: clip it before logging."""
    if frame in FINAL_ANSWERS:
        return bytes(frame), None
    if frame[:1] != LANE_REFUSED:
        raise WireError("malformed lane answer")
    body = loads(frame[1:], "lane answer")
    code, text, no_room = body.get("code"), body.get("text"), body.get("no_room")
    if not printable(code, 32) or not isinstance(text, str) or type(no_room) is not bool:
        raise WireError("malformed lane refusal")
    return None, (code, text[:MAX_LANE_TEXT], no_room)


def encode_ping(job: str, src: str, calls: int = 0, waits: Sequence[tuple[str, int]] = ()) -> bytes:
    """A ping asks a receiver which party and job it serves; ``calls`` is how many calls of the
    pinging party's program its receiver knows (the answer then carries the digest to compare);
    ``waits`` are values of the pinged party that the pinging one waits for, each with how many
    calls its program had made when it asked (the answer says which will never come)."""
    body: dict[str, Any] = {"job": job, "src": src, "calls": calls}
    if waits:
        body["waits"] = [[object_id, asked_at] for object_id, asked_at in waits[:MAX_WAITS]]
    return json.dumps(body).encode()


def decode_ping(frame: bytes) -> tuple[Any, Any, int, list[tuple[str, int]]]:
    """``(job, src, calls, waits)`` of a ping; job and src are checked by the receiver as for pushes."""
    body = loads(frame, "ping")
    calls = body.get("calls", 0)
    if type(calls) is not int or calls < 0:
        raise WireError("malformed ping: 'calls' must be a count")
    waits = body.get("waits", [])
    if not isinstance(waits, list) or len(waits) > MAX_WAITS or not all(
            isinstance(w, list) and len(w) == 2 and printable(w[0], MAX_OBJECT_ID) and type(w[1]) is int and w[1] >= 0
            for w in waits):
        raise WireError(f"malformed ping: 'waits' must be at most {MAX_WAITS} [object id, count] pairs")
    return body.get("job"), body.get("src"), calls, [(w[0], w[1]) for w in waits]


def encode_ping_answer(party: str, job: str, calls: int | None = None, digest: str | None = None,
                       never: Sequence[int] = ()) -> bytes:
    """``never``: the values the ping asked about that this party will never send to the pinging
    one, by their place in the ping's ``waits`` (so nothing the ping carried is sent back)."""
    answer: dict[str, Any] = {"party": party, "job": job}
    if calls is not None:
        answer.update(calls=calls, digest=digest)
    if never:
        answer["never"] = list(never[:MAX_WAITS])
    return json.dumps(answer).encode()


def decode_ping_answer(frame: bytes) -> tuple[Any, Any, int, str | None, list[int]]:
    """``(party, job, calls, digest, never)`` of a ping answer; a malformed one is a ``WireError``."""
    body = loads(frame, "ping answer")
    calls, digest, never = body.get("calls", 0), body.get("digest"), body.get("never", [])
    if type(calls) is not int or calls < 0 or not (digest is None or isinstance(digest, str) and len(digest) <= 64):
        raise WireError("malformed ping answer")
    if not isinstance(never, list) or len(never) > MAX_WAITS or not all(
            type(i) is int and 0 <= i < MAX_WAITS for i in never):
        raise WireError(f"malformed ping answer: 'never' must list places in the ping's waits (0 to {MAX_WAITS - 1})")
    return body.get("party"), body.get("job"), calls, digest, never


def encode_calls_request(job: str, src: str, upto: int | None = None, call: int | None = None) -> bytes:
    """Ask a peer for the digests of its first ``upto`` calls, or the fingerprint of call ``call``."""
    return json.dumps({"job": job, "src": src, "upto": upto, "call": call}).encode()


def decode_calls_request(frame: bytes) -> tuple[Any, Any, int | None, int | None]:
    body = loads(frame, "calls request")
    upto, call = body.get("upto"), body.get("call")
    if not (upto is None or type(upto) is int) or not (call is None or type(call) is int):
        raise WireError("malformed calls request")
    return body.get("job"), body.get("src"), upto, call


def encode_calls_digests(digests: bytes) -> bytes:
    """The answer to a calls request for ``upto``: the packed running digests (8 bytes a call)."""
    return json.dumps({"digests": base64.b64encode(digests).decode()}).encode()


def decode_calls_digests(frame: bytes, upto: int) -> bytes:
    """The packed digests of a calls answer to a request for ``upto`` calls: at most that many."""
    body = loads(frame, "calls answer", limit=16 * upto + 1024)
    digests = body.get("digests")
    try:
        packed = base64.b64decode(digests, validate=True) if isinstance(digests, str) else None
    except (binascii.Error, ValueError):
        packed = None
    if packed is None or len(packed) % 8 or len(packed) > 8 * upto:
        raise WireError(f"malformed calls answer: 'digests' must be at most {upto} packed digests")
    return packed


def encode_calls_fingerprint(fingerprint: str | None) -> bytes:
    """The answer to a calls request for one call: its fingerprint (None if no longer kept)."""
    return json.dumps({"fingerprint": fingerprint}).encode()


def decode_calls_fingerprint(frame: bytes) -> str | None:
    """The fingerprint a calls answer names, None if the peer no longer keeps it (or names none)."""
    fingerprint = loads(frame, "calls answer").get("fingerprint")
    return fingerprint if isinstance(fingerprint, str) else None


def encode_bye(job: str, src: str, kind: str, error_type: str = "", cause: str | None = None) -> bytes:
    """A goodbye: ``src`` sends nothing more in ``job``, because its program ``finished`` or ``aborted``."""
    return json.dumps({"job": job, "src": src, "kind": kind, "error_type": error_type, "cause": cause}).encode()


def decode_bye(frame: bytes) -> tuple[Any, Any, str, str, str | None]:
    """``(job, src, kind, error_type, cause)``; kinds and types are checked here."""
    body = loads(frame, "goodbye")
    kind, error_type, cause = body.get("kind"), body.get("error_type") or "", body.get("cause")
    if kind not in BYE_KINDS or not (error_type == "" or printable(error_type, 256)) \
            or not (cause is None or isinstance(cause, str) and len(cause) <= 16384):
        raise WireError("malformed goodbye")
    return body.get("job"), body.get("src"), kind, error_type, cause


def encode_error(party: str, error_type: str, cause: str | None) -> bytes:
    """The payload of an ``error`` push: the value's task failed at ``party`` (docs/wire.md). A
    cause of more than ``MAX_ERROR_CAUSE`` characters is cut there."""
    if cause is not None and len(cause) > MAX_ERROR_CAUSE:
        cause = cause[:MAX_ERROR_CAUSE] + f"... ({len(cause) - MAX_ERROR_CAUSE} more characters not sent)"
    return json.dumps({"party": party, "type": error_type[:256], "cause": cause}).encode()


def decode_error(frame: bytes | memoryview) -> tuple[str, str, str | None]:
    """``(party, type, cause)`` of an error payload, each checked; else a ``WireError``."""
    body = loads(frame, "error frame", MAX_ERROR_BYTES)
    party, kind, cause = body.get("party"), body.get("type"), body.get("cause")
    if set(body) - {"party", "type", "cause"} or not is_party(party) or not printable(kind, 256) \
            or not (cause is None or isinstance(cause, str)):
        raise WireError("malformed error frame")
    return party, kind, cause


# ---- standby calls: an outbound-only party's calls that carry its peers' calls to it ----
# (``fed._transport.reverse``; docs/wire.md, "Outbound-only parties")

END_OF_WRITING = b""  # the calling side's last frame of a call carried on a standby
CARRIED_FRAME, CARRIED_DONE = b"M", b"K"  # the serving side's frames: one of its messages; the call ended well


def encode_standby(job: str, src: str) -> bytes:
    """The first frame of a standby call: ``src`` (outbound-only) offers the peer a call to carry one of its own."""
    return json.dumps({"job": job, "src": src}).encode()


def decode_standby(frame: bytes) -> tuple[Any, Any]:
    """``(job, src)`` of a standby's first frame; checked by the receiver as a ping's are."""
    body = loads(frame, "standby")
    if set(body) - {"job", "src"}:
        raise WireError("malformed standby")
    return body.get("job"), body.get("src")


def encode_carried_method(method: str) -> bytes:
    """The first frame the peer writes on a standby it takes: which call it carries."""
    return method.encode()


def decode_carried_method(frame: bytes | None, methods: Sequence[str]) -> str:
    if frame is None or len(frame) > 32:
        raise WireError("malformed carried call")
    try:
        method = frame.decode("ascii")
    except UnicodeDecodeError:
        raise WireError("malformed carried call") from None
    if method not in methods:
        raise WireError("unknown carried call")
    return method
