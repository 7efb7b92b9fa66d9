"""The edges of every wire decoder: each limit admits its last value and refuses the next, and a
field of the wrong type is refused by the decoder in its own words."""

from __future__ import annotations

import json

import pytest

from fed._transport import wire

V = bytes([wire.VERSION])


def header_with(**fields) -> bytes:
    body = {"job": "j", "src": "alice", "dst": "bob", "object_id": "3:0", "fingerprint": "f", "codec": "fed",
            "segments": [10], **fields}
    return wire.MAGIC + V + json.dumps(body).encode()


def wire_error(call, message: str) -> None:
    with pytest.raises(wire.WireError) as info:
        call()
    assert str(info.value) == message


SEGMENTS = f"header field 'segments' must be a list of 1 to {wire.MAX_SEGMENTS} sizes"
COPIED = "header field 'copied' must list segment numbers in increasing order"
PRINTABLE = ("header fields 'object_id' (up to 256) and 'fingerprint' (up to 1024) must be printable text")


def test_a_header_of_every_limit_at_its_edge_is_accepted():
    name = "a" + "b" * 127
    got = wire.decode_header(header_with(job=name, src=name, dst="b.-_9", object_id="o" * 256, fingerprint="f" * 1024,
                                         segments=[wire.MAX_SIZE - 1, 0, 5], copied=[1, 2], codec="error"))

    assert (got.job, got.src, got.dst) == (name, name, "b.-_9")
    assert (len(got.object_id), len(got.fingerprint), got.codec) == (256, 1024, "error")
    assert got.segments == (wire.MAX_SIZE - 1, 0, 5) and got.copied == (1, 2)
    assert wire.decode_header(header_with(segments=[0] * wire.MAX_SEGMENTS)).segments == (0,) * wire.MAX_SEGMENTS
    assert wire.decode_header(header_with()).copied == ()


@pytest.mark.parametrize("fields, message", [
    ({"job": "a" * 129}, "header field 'job' is not a job name"),
    ({"job": "-a"}, "header field 'job' is not a job name"),
    ({"job": ""}, "header field 'job' is not a job name"),
    ({"src": "a" * 129}, "header field 'src' is not a party name"),
    ({"src": "_a"}, "header field 'src' is not a party name"),
    ({"dst": "a b"}, "header field 'dst' is not a party name"),
    ({"src": None}, "header field 'src' must be a string"),
    ({"object_id": 5}, "header field 'object_id' must be a string"),
    ({"fingerprint": ["f"]}, "header field 'fingerprint' must be a string"),
    ({"codec": 1}, "header field 'codec' must be a string"),
    ({"object_id": "o" * 257}, PRINTABLE),
    ({"object_id": ""}, PRINTABLE),
    ({"fingerprint": "f" * 1025}, PRINTABLE),
    ({"fingerprint": "f\x00"}, PRINTABLE),
    ({"codec": "FED"}, "unknown codec"),
    ({"segments": [wire.MAX_SIZE]}, SEGMENTS),
    ({"segments": [0] * (wire.MAX_SEGMENTS + 1)}, SEGMENTS),
    ({"segments": []}, SEGMENTS),
    ({"segments": {"0": 1}}, SEGMENTS),
    ({"segments": None}, SEGMENTS),
    ({"segments": [1, "2"]}, SEGMENTS),
    ({"segments": [1, 2], "copied": [0]}, COPIED),
    ({"segments": [1, 2], "copied": [2]}, COPIED),
    ({"segments": [1, 2, 3], "copied": [2, 1]}, COPIED),
    ({"segments": [1, 2, 3], "copied": [1, 1]}, COPIED),
    ({"segments": [1, 2], "copied": [True]}, COPIED),
    ({"segments": [1, 2], "copied": "1"}, COPIED),
    ({"segments": [1, 2], "copied": None}, COPIED),
    ({"more": 1}, "unknown header fields"),
])
def test_a_header_past_each_limit_is_refused_for_that_limit(fields, message):
    wire_error(lambda: wire.decode_header(header_with(**fields)), message)


def test_a_header_without_a_field_is_refused_for_that_field():
    body = json.loads(header_with()[5:])
    for name in ("job", "src", "dst", "object_id", "fingerprint", "codec"):
        frame = wire.MAGIC + V + json.dumps({k: v for k, v in body.items() if k != name}).encode()
        wire_error(lambda frame=frame: wire.decode_header(frame), f"header field {name!r} must be a string")
    frame = wire.MAGIC + V + json.dumps({k: v for k, v in body.items() if k != "segments"}).encode()
    wire_error(lambda: wire.decode_header(frame), SEGMENTS)


def test_a_header_frame_is_refused_by_its_first_bytes_before_its_body():
    wire_error(lambda: wire.decode_header(wire.MAGIC), f"unsupported wire version; this party speaks version "
                                                       f"{wire.VERSION}")
    wire_error(lambda: wire.decode_header(b"RFE"), "not a fed push: bad magic")
    wire_error(lambda: wire.decode_header(wire.MAGIC + bytes([wire.VERSION + 1]) + b"{}"),
               f"unsupported wire version; this party speaks version {wire.VERSION}")
    frame = header_with()
    padded = frame[:5] + b" " * (wire.MAX_HEADER_BYTES - len(frame)) + frame[5:]
    assert len(padded) == wire.MAX_HEADER_BYTES and wire.decode_header(padded).src == "alice"
    wire_error(lambda: wire.decode_header(b" " + padded), f"header frame over {wire.MAX_HEADER_BYTES} bytes")


def test_json_takes_ints_of_twenty_digits_and_objects_only():
    assert wire.loads(b'{"a": ' + b"9" * 20 + b"}", "x") == {"a": int("9" * 20)}
    assert wire.loads(b'{"a": -' + b"9" * 19 + b"}", "x") == {"a": -int("9" * 19)}
    wire_error(lambda: wire.loads(b'{"a": ' + b"9" * 21 + b"}", "x"), "malformed x: not a JSON object of the "
                                                                        "expected form")
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        wire_error(lambda c=constant: wire.loads(b'{"a": ' + c + b"}", "x"),
                   "malformed x: not a JSON object of the expected form")
    wire_error(lambda: wire.loads(b"[1]", "x"), "malformed x: not a JSON object")
    wire_error(lambda: wire.loads(b'{"a": 1}', "x", limit=7), "x over 7 bytes")
    assert wire.loads(b'{"a": 1}', "x", limit=8) == {"a": 1}
    assert wire.loads(memoryview(b'{"a": 1.5}'), "x") == {"a": 1.5}
    wire_error(lambda: wire.loads(b" " * (wire.MAX_CONTROL_BYTES - 1) + b"{}", "ping"),
               f"ping over {wire.MAX_CONTROL_BYTES} bytes")


def test_a_ping_counts_calls_with_a_non_negative_int():
    assert wire.decode_ping(b'{"job": "j", "src": "a"}') == ("j", "a", 0, [])
    assert wire.decode_ping(b'{"job": "j", "src": "a", "calls": 0}') == ("j", "a", 0, [])
    for calls in (b"true", b"1.0", b"-1", b"null"):
        wire_error(lambda c=calls: wire.decode_ping(b'{"job": "j", "src": "a", "calls": ' + c + b"}"),
                   "malformed ping: 'calls' must be a count")


def test_a_ping_answer_has_a_count_and_a_digest_of_at_most_64_chars():
    assert wire.decode_ping_answer(b'{"party": "b", "job": "j", "calls": 0, "digest": "' + b"d" * 64 + b'"}') == \
        ("b", "j", 0, "d" * 64, [])
    for body in (b'"calls": 1, "digest": "' + b"d" * 65 + b'"', b'"calls": -1', b'"calls": true', b'"calls": null',
                 b'"digest": ["d"]'):
        wire_error(lambda b=body: wire.decode_ping_answer(b'{"party": "b", "job": "j", ' + b + b"}"),
                   "malformed ping answer")


def test_a_calls_request_takes_ints_or_nothing():
    assert wire.decode_calls_request(b'{"job": "j", "src": "a", "call": 3}') == ("j", "a", None, 3)
    assert wire.decode_calls_request(b'{"job": "j", "src": "a"}') == ("j", "a", None, None)
    for body in (b'"upto": "1"', b'"call": "1"', b'"upto": 1.0', b'"call": [1]'):
        wire_error(lambda b=body: wire.decode_calls_request(b'{"job": "j", "src": "a", ' + b + b"}"),
                   "malformed calls request")


def test_a_goodbye_has_a_known_kind_a_printable_type_and_a_cause_of_at_most_16384_chars():
    for kind in wire.BYE_KINDS:
        assert wire.decode_bye(wire.encode_bye("j", "a", kind))[2] == kind
    long_ok = wire.encode_bye("j", "a", "aborted", "E" * 256, "c" * 16384)
    assert wire.decode_bye(long_ok) == ("j", "a", "aborted", "E" * 256, "c" * 16384)
    assert wire.decode_bye(b'{"job": "j", "src": "a", "kind": "finished", "error_type": null}')[3] == ""
    for body in (b'"kind": "aborted", "error_type": "' + b"E" * 257 + b'"',
                 b'"kind": "aborted", "cause": "' + b"c" * 16385 + b'"',
                 b'"kind": "aborted", "cause": ["c"]', b'"kind": "Finished"', b'"kind": null',
                 b'"kind": "aborted", "error_type": 5'):
        wire_error(lambda b=body: wire.decode_bye(b'{"job": "j", "src": "a", ' + b + b"}"), "malformed goodbye")


def test_an_error_frame_has_a_party_a_printable_type_of_at_most_256_chars_and_a_str_cause():
    assert wire.decode_error(b'{"party": "alice", "type": "' + b"E" * 256 + b'", "cause": null}') == \
        ("alice", "E" * 256, None)
    assert wire.decode_error(memoryview(b'{"party": "alice", "type": "E", "cause": "c"}')) == ("alice", "E", "c")
    for body in (b'"party": "alice", "type": "' + b"E" * 257 + b'", "cause": null',
                 b'"party": "-alice", "type": "E", "cause": null', b'"party": "alice", "cause": null',
                 b'"type": "E", "cause": null', b'"party": "alice", "type": "E", "cause": ["c"]'):
        wire_error(lambda b=body: wire.decode_error(b"{" + b + b"}"), "malformed error frame")
    head, tail = b'{"party": "alice", "type": "E", "cause": "', b'"}'
    fill = wire.MAX_ERROR_BYTES - len(head) - len(tail)
    big = head + b"c" * fill + tail
    assert len(big) == wire.MAX_ERROR_BYTES and len(wire.decode_error(big)[2]) == fill
    wire_error(lambda: wire.decode_error(b" " * wire.MAX_ERROR_BYTES + b"{}"),
               f"error frame over {wire.MAX_ERROR_BYTES} bytes")


def test_an_error_frame_cuts_its_cause_and_type_when_made():
    exact = "c" * wire.MAX_ERROR_CAUSE
    assert wire.decode_error(wire.encode_error("alice", "E", exact))[2] == exact
    assert wire.decode_error(wire.encode_error("alice", "T" * 300, None))[1] == "T" * 256


def test_a_one_message_push_splits_at_its_header_length():
    head, payload = wire.decode_whole((3).to_bytes(4, "little") + b"abcdef")
    assert (head, bytes(payload)) == (b"abc", b"def")
    assert wire.decode_whole((3).to_bytes(4, "little") + b"abc")[0] == b"abc"
    wire_error(lambda: wire.decode_whole(b"\x03\x00\x00"), "one-message push shorter than its length field")
    wire_error(lambda: wire.decode_whole((4).to_bytes(4, "little") + b"abc"),
               "one-message push shorter than its header length")


def test_an_ack_is_its_marker_and_eight_bytes():
    assert wire.decode_ack(wire.encode_ack(2**40 + 5)) == 2**40 + 5
    assert wire.decode_ack(wire.ACK + b"\x00" * 7) is None
    assert wire.decode_ack(wire.ACK + b"\x00" * 9) is None
    assert wire.decode_ack(b"B" + b"\x00" * 8) is None
    assert wire.decode_ack(b"ok") is None


@pytest.mark.parametrize("name, ok", [("a", True), ("A9._-", True), ("a" * 128, True), ("a" * 129, False),
                                      ("", False), (".a", False), ("a\n", False), (None, False), (b"a", False)])
def test_a_party_name_is_128_letters_digits_dots_dashes_underscores_starting_with_a_letter_or_digit(name, ok):
    assert wire.is_party(name) is ok


@pytest.mark.parametrize("text, limit, ok", [("a", 1, True), ("ab", 1, False), ("", 5, False), ("a\tb", 5, False),
                                             ("é ü", 5, True), (3, 5, False)])
def test_printable_is_non_empty_within_its_limit_without_controls(text, limit, ok):
    assert wire.printable(text, limit) is ok


@pytest.mark.parametrize("decode, what", [(wire.decode_ping, "ping"), (wire.decode_ping_answer, "ping answer"),
                                          (wire.decode_calls_request, "calls request"), (wire.decode_bye, "goodbye"),
                                          (wire.decode_error, "error frame")])
def test_a_control_message_that_is_not_json_is_refused_by_its_own_name(decode, what):
    wire_error(lambda: decode(b"[1"), f"malformed {what}: not a JSON object of the expected form")
    wire_error(lambda: decode(b"[1]"), f"malformed {what}: not a JSON object")


def test_the_shortest_frames_get_past_their_length_checks_to_the_next_check():
    wire_error(lambda: wire.decode_header(wire.MAGIC + V), "malformed header: not a JSON object of the expected form")
    head, payload = wire.decode_whole(b"\x00\x00\x00\x00")
    assert head == b"" and bytes(payload) == b""
