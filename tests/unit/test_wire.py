"""The wire format: header round trip and validation, payload chunking and reassembly."""

from __future__ import annotations

import pytest

from fed._transport import wire

HEADER = wire.Header(job="j", src="alice", dst="bob", object_id="3:0", fingerprint="f@alice#3",
                     codec="pickle5", segments=(10, 0, 100))


def test_header_round_trip_and_layout():
    frame = wire.encode_header(HEADER)

    assert frame.startswith(wire.MAGIC)
    assert wire.decode_header(frame) == HEADER
    assert wire.layout(HEADER.segments) == [0, 64, 64, 164]
    assert HEADER.total_size == 164


@pytest.mark.parametrize("frame, words", [
    (b"XXXX\x01{}", "magic"),
    (wire.MAGIC + b"\x02{}", "version"),
    (wire.MAGIC + b"\x01{not json", "JSON"),
    (wire.MAGIC + b"\x01[]", "object"),
    (wire.encode_header(HEADER).replace(b'"codec":"pickle5"', b'"codec":"exec"'), "codec"),
    (wire.encode_header(HEADER).replace(b"[10,0,100]", b"[-1]"), "segments"),
    (wire.encode_header(HEADER).replace(b"[10,0,100]", b"[]"), "segments"),
    (wire.encode_header(HEADER).replace(b'"job":"j"', b'"job":1'), "job"),
    (wire.encode_header(HEADER)[:-1] + b',"extra":1}', "extra"),
])
def test_malformed_headers_are_wire_errors(frame, words):
    with pytest.raises(wire.WireError, match=words):
        wire.decode_header(frame)


@pytest.mark.parametrize("chunk", [1, 7, 64, 65, 1000])
@pytest.mark.parametrize("sizes", [(0,), (1,), (63, 1, 200), (130, 0, 0, 5)])
def test_payload_chunks_reassemble_to_the_segments(chunk, sizes):
    segments = [memoryview(bytes((i + j) % 251 for j in range(n))) for i, n in enumerate(sizes)]

    chunks = list(wire.iter_payload(segments, chunk))
    payload = memoryview(b"".join(chunks))

    assert all(len(c) == chunk for c in chunks[:-1])
    assert len(payload) == wire.layout(sizes)[-1]
    assert [bytes(s) for s in wire.split_payload(payload, sizes)] == [bytes(s) for s in segments]
