"""The wire format: header round trip and validation, control messages, payload chunking and reassembly."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fed._transport import wire

HEADER = wire.Header(job="j", src="alice", dst="bob", object_id="3:0", fingerprint="f@alice#3",
                     codec="fed", segments=(10, 0, 100))


def test_header_round_trip_and_layout():
    frame = wire.encode_header(HEADER)

    assert frame.startswith(wire.MAGIC)
    assert wire.decode_header(frame) == HEADER
    assert wire.layout(HEADER.segments) == [0, 64, 64, 164]
    assert HEADER.total_size == 164


def header_with(**fields) -> bytes:
    body = {"job": "j", "src": "alice", "dst": "bob", "object_id": "3:0", "fingerprint": "f@alice#3",
            "codec": "fed", "segments": [10], **fields}
    return wire.MAGIC + bytes([wire.VERSION]) + json.dumps(body).encode()


V = bytes([wire.VERSION])


@pytest.mark.parametrize("frame, words", [
    (b"XXXX" + V + b"{}", "magic"),
    (wire.MAGIC + b"\x01{}", "version"),
    (wire.MAGIC + V + b"{not json", "malformed header"),
    (wire.MAGIC + V + b"[]", "not a JSON object"),
    (wire.MAGIC + V + b"\xff\xfe", "malformed header"),
    (wire.MAGIC + V + b"[" * 100_000 + b"]" * 100_000, "malformed header"),  # nesting past the recursion limit
    (header_with(codec="exec"), "codec"),
    (header_with(codec="pickle5"), "codec"),
    (header_with(segments=[-1]), "segments"),
    (header_with(segments=[]), "segments"),
    (header_with(segments=[1.5]), "segments"),
    (header_with(segments=[True]), "segments"),
    (header_with(segments=[2**62]), "segments"),
    (header_with(segments=[0] * (wire.MAX_SEGMENTS + 1)), "segments"),
    (header_with(segments=[]).replace(b"[]", b"[" + b"9" * 5000 + b"]"), "malformed header"),  # a 5000-digit int
    (header_with(segments=[]).replace(b"[]", b"[NaN]"), "malformed header"),
    (header_with(job=1), "job"),
    (header_with(job="a\nb"), "job"),
    (header_with(src="ALICE\n[fake] log line"), "src"),
    (header_with(dst="b" * 200), "dst"),
    (header_with(object_id="x" * 257), "object_id"),
    (header_with(object_id="1:0\n"), "object_id"),
    (header_with(fingerprint=""), "fingerprint"),
    (header_with(extra=1), "unknown header fields"),
    (wire.MAGIC + V + b" " * wire.MAX_HEADER_BYTES, "over"),
])
def test_malformed_headers_are_wire_errors_that_do_not_echo_the_frame(frame, words):
    with pytest.raises(wire.WireError, match=words) as info:
        wire.decode_header(frame)
    assert len(str(info.value)) < 200 and "\n" not in str(info.value)


@pytest.mark.parametrize("frame", [
    b'"just a string"', b"[1, 2]", b"null", b'{"party": "alice"', b"{" * 50_000,
    b'{"party": "alice", "type": "E", "cause": null, "more": 1}', b'{"party": 7, "type": "E", "cause": null}',
    b'{"party": "alice", "type": "E\\nforged", "cause": null}', b'{"party": "alice", "type": "", "cause": null}',
    b'{"party": "alice", "type": "E", "cause": 5}',
    b'{"party": "alice", "type": "E", "cause": ' + b"1" * 4400 + b"}",
])
def test_an_error_frame_that_is_not_the_expected_object_is_a_wire_error(frame):
    with pytest.raises(wire.WireError, match="error frame"):
        wire.decode_error(frame)


def test_error_frames_round_trip_and_a_long_cause_is_cut():
    assert wire.decode_error(wire.encode_error("alice", "KeyError", "k")) == ("alice", "KeyError", "k")

    _, _, cause = wire.decode_error(wire.encode_error("alice", "E", "x" * (wire.MAX_ERROR_CAUSE + 10)))
    assert len(cause) < wire.MAX_ERROR_CAUSE + 100 and cause.endswith("10 more characters not sent)")


@pytest.mark.parametrize("decode, frame", [
    (wire.decode_ping, b'{"job": "j", "src": "alice", "calls": "many"}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "calls": -1}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "calls": ' + b"9" * 30 + b"}"),
    (wire.decode_ping_answer, b'{"party": "bob", "job": "j", "calls": [1]}'),
    (wire.decode_ping_answer, b'{"party": "bob", "job": "j", "calls": 1, "digest": 5}'),
    (wire.decode_ping_answer, b"[" * 10_000),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "waits": {"1:0": 1}}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "waits": [["1:0"]]}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "waits": [["1:0", -1]]}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "waits": [["1:0", true]]}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "waits": [["", 1]]}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "waits": [["1\\n0", 1]]}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "waits": [["' + b"x" * 257 + b'", 1]]}'),
    (wire.decode_ping, b'{"job": "j", "src": "alice", "waits": [' + b", ".join([b'["1:0", 1]'] * 17) + b"]}"),
    (wire.decode_ping_answer, b'{"party": "bob", "job": "j", "never": "1:0"}'),
    (wire.decode_ping_answer, b'{"party": "bob", "job": "j", "never": ["1:0"]}'),
    (wire.decode_ping_answer, b'{"party": "bob", "job": "j", "never": [-1]}'),
    (wire.decode_ping_answer, b'{"party": "bob", "job": "j", "never": [16]}'),
    (wire.decode_ping_answer, b'{"party": "bob", "job": "j", "never": [true]}'),
    (wire.decode_ping_answer, b'{"party": "bob", "job": "j", "never": [' + b", ".join([b"1"] * 17) + b"]}"),
    (wire.decode_calls_request, b'{"job": "j", "src": "alice", "upto": "1"}'),
    (wire.decode_bye, b'{"job": "j", "src": "alice", "kind": "vanished"}'),
    (wire.decode_bye, b'{"job": "j", "src": "alice", "kind": "aborted", "error_type": "E\\n"}'),
    (wire.decode_bye, b'{"job": "j", "src": "alice", "kind": "aborted", "cause": 3}'),
])
def test_malformed_control_messages_are_wire_errors(decode, frame):
    with pytest.raises(wire.WireError):
        decode(frame)


def test_control_messages_round_trip():
    assert wire.decode_ping(wire.encode_ping("j", "alice", 3)) == ("j", "alice", 3, [])
    assert wire.decode_ping(wire.encode_ping("j", "alice", 3, [("4:0", 2)])) == ("j", "alice", 3, [("4:0", 2)])
    assert wire.decode_ping_answer(wire.encode_ping_answer("bob", "j", 5, "123")) == ("bob", "j", 5, "123", [])
    assert wire.decode_ping_answer(wire.encode_ping_answer("bob", "j")) == ("bob", "j", 0, None, [])
    assert wire.decode_ping_answer(wire.encode_ping_answer("bob", "j", 5, None, [0, 3])) == \
        ("bob", "j", 5, None, [0, 3])
    assert wire.decode_calls_request(wire.encode_calls_request("j", "alice", upto=4)) == ("j", "alice", 4, None)
    assert wire.decode_bye(wire.encode_bye("j", "alice", "aborted", "E", "c")) == ("j", "alice", "aborted", "E", "c")


@pytest.mark.parametrize("chunk", [1, 7, 64, 65, 1000])
@pytest.mark.parametrize("sizes", [(0,), (1,), (63, 1, 200), (130, 0, 0, 5)])
def test_payload_chunks_reassemble_to_the_segments(chunk, sizes):
    segments = [memoryview(bytes((i + j) % 251 for j in range(n))) for i, n in enumerate(sizes)]

    chunks = list(wire.iter_payload(segments, chunk))
    payload = memoryview(b"".join(chunks))

    assert all(len(c) == chunk for c in chunks[:-1])
    assert len(payload) == wire.layout(sizes)[-1]
    assert [bytes(s) for s in wire.split_payload(payload, sizes)] == [bytes(s) for s in segments]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
@pytest.mark.parametrize("sizes", [(1,), (63, 1, 200), (130, 0, 0, 5), (64, 64)])
def test_payload_from_any_offset_is_the_rest_of_the_payload_in_chunks_from_there(chunk, sizes):
    segments = [memoryview(bytes((i + j) % 251 + 1 for j in range(n))) for i, n in enumerate(sizes)]
    whole = b"".join(wire.iter_payload(segments, 1 << 20))

    for start in range(len(whole) + 2):
        chunks = list(wire.iter_payload(segments, chunk, start))
        assert b"".join(chunks) == whole[start:], start
        assert all(len(c) == chunk for c in chunks[:-1])


def test_a_resumed_push_says_so_in_its_header_and_a_first_try_leaves_it_out():
    head = wire.Header("j", "alice", "bob", "1:0", "f@alice#1", "fed", (5,))
    assert b"resume" not in wire.encode_header(head)  # a first try's header is as before
    assert wire.decode_header(wire.encode_header(head)).resume is False
    assert wire.decode_header(wire.encode_header(dataclasses.replace(head, resume=True))).resume is True
    bad = wire.encode_header(head)[:-1] + b',"resume":1}'
    with pytest.raises(wire.WireError, match="'resume' must be true or false"):
        wire.decode_header(bad)
