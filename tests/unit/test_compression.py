"""Compressed pushes over the in-memory link: what is compressed for whom, that a value arrives
intact and resumes, and what a hostile peer's compressed frames can make a receiver do: never
write or allocate past the payload its header declared, never decompress more than that."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np
import pytest
import zstandard
from memory_parties import net, parties, ready

from fed._config import build_config
from fed._exceptions import FedRemoteError, FedSendError
from fed._serialization import codec
from fed._transport import compression, link, wire
from fed._transport.lane import LANE_BYTES

CHUNK = 64 * 1024


def run(test, *names, **kw):
    async def main():
        async with parties(*(names or ("alice", "bob")), **kw) as made:
            await asyncio.wait_for(test(made), 30)
    asyncio.run(main())


def text_like(n: int) -> np.ndarray:
    """``n`` bytes of CSV-like rows: compressible, as text is."""
    rng = np.random.default_rng(0)
    words = [b"alice", b"bob", b"carol", b"42", b"3.14159", b"true", b"hospital", b"2026-12-03"]
    rows = b"\n".join(b",".join(words[i] for i in rng.integers(0, len(words), 6)) for _ in range(n // 40 + 1))
    return np.frombuffer(rows[:n], dtype=np.uint8).copy()


def test_a_compressed_push_arrives_intact_in_fewer_bytes_and_acks_count_payload_bytes():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        value = text_like(2 * 1024 * 1024)
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))
        np.testing.assert_array_equal(await bob.receiver.get("alice", "1:0", "f@alice#1"), value)
        assert net().carried[bob.address] < value.nbytes / 3  # sent compressed
        assert alice.sender.meter.snapshot()["bob"]["bytes"] >= value.nbytes  # counted as payload

    run(test, chunk_size_in_bytes=CHUNK, compression="zstd")


def test_only_values_over_a_lane_s_size_to_the_peers_named_are_compressed():
    async def test(p):
        alice = p["alice"]
        small, large = text_like(LANE_BYTES // 2), text_like(4 * LANE_BYTES)
        for dst in ("bob", "carol"):
            for i, value in enumerate((small, large)):
                before = net().carried.get(p[dst].address, 0)
                await alice.sender.send(dst, f"{i}:0", f"f@alice#{i}", ready(value))
                np.testing.assert_array_equal(await p[dst].receiver.get("alice", f"{i}:0", f"f@alice#{i}"), value)
                carried = net().carried[p[dst].address] - before
                assert (carried < value.nbytes / 3) == (dst == "bob" and value is large), (dst, value.nbytes)

    # The same script at every party: each ignores its own name in the table.
    run(test, "alice", "bob", "carol", chunk_size_in_bytes=CHUNK, compression={"alice": "zstd", "bob": "zstd"})


def test_a_compressed_push_cut_near_its_end_resumes_and_resends_at_most_a_window_and_a_chunk():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        value = np.random.default_rng(1).integers(0, 4, 64 * CHUNK, dtype=np.uint8)  # compresses, not to nothing
        frames = [compression.compress(bytes(c), 1) for c in wire.iter_payload([memoryview(value)], CHUNK)]
        whole = sum(map(len, frames))
        net().fault(bob.address).cut_after = whole * 60 // 64
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))
        np.testing.assert_array_equal(await asyncio.wait_for(bob.receiver.get("alice", "1:0", "f@alice#1"), 5),
                                      value)
        assert net().calls[(bob.address, link.PUSH)] == 2
        resent = net().carried[bob.address] - whole
        assert 0 < resent <= 5 * len(frames[0]) + 4096, resent / len(frames[0])

    run(test, chunk_size_in_bytes=CHUNK, inflight_window_in_bytes=4 * CHUNK, compression="zstd")


def test_a_receiver_without_zstandard_refuses_a_compressed_push_and_the_sender_is_told_what_to_do(monkeypatch):
    async def test(p):
        monkeypatch.setattr(compression, "available", lambda name: False)  # bob's side: the one that checks
        with pytest.raises(FedSendError, match=r"INVALID_ARGUMENT: party 'bob' cannot decompress zstd .*"
                                               r"pip install 'rayfed\[compression\]' there"):
            await p["alice"].sender.send("bob", "1:0", "f@alice#1", ready(text_like(4 * LANE_BYTES)))
        assert p["alice"].sender.meter.snapshot()["bob"]["retries"] == 0

    run(test, chunk_size_in_bytes=CHUNK, compression="zstd")


# A hostile sender writes its own frames (the sender's link, not the sender's policy).

async def hostile_push(alice, declared: int, frames: list[bytes], **header) -> list[bytes]:
    """Push a header declaring ``declared`` payload bytes, compressed, then ``frames``; the
    receiver's answers (acks, then its final answer or refusal) as they came."""
    segments, copied = codec.encode(np.zeros(declared - 64, dtype=np.uint8))  # 64: the array's own header
    head = wire.Header("j", "alice", "bob", "1:0", "f@alice#1", "fed", tuple(len(s) for s in segments), copied,
                       compression="zstd", **header)
    stream = await alice.sender._link.connect("bob").stream(link.PUSH, 1)
    answers: list = []
    try:
        await stream.write(wire.encode_header(head))
        answers.append(await stream.read())
        for frame in frames:
            await stream.write(frame)
            answers.append(await stream.read())
            if wire.decode_ack(answers[-1]) is None:
                break
        else:
            await stream.done_writing()
            answers.append(await stream.read())
        await stream.read()
    except link.LinkError as exc:  # the status that ends a refused push
        answers.append(exc)
    return answers


def test_a_frame_that_decompresses_past_the_declared_size_is_refused_without_decompressing_it():
    async def test(p):
        bomb = zstandard.ZstdCompressor(level=3).compress(bytes(1 << 30))  # 1 GiB of zeros in ~32 KiB
        assert len(bomb) < 64 * 1024
        started = time.perf_counter()
        answers = await hostile_push(p["alice"], 1 << 20, [bomb])
        took = time.perf_counter() - started
        assert wire.decode_ack(answers[0]) == 0
        assert answers[1][:1] == wire.LANE_REFUSED and b"holds more than the rest of the declared payload" in answers[1]
        assert isinstance(answers[-1], link.LinkError) and answers[-1].code == "INVALID_ARGUMENT"
        assert took < 0.2  # refused on the size the frame records: nothing of it is decompressed
        stats = p["bob"].receiver.stats()
        assert stats["waiting_bytes"] == 0 and p["bob"].receiver.counts()["values"] == 0

    run(test)


def unsized_frame() -> bytes:
    """A frame that does not record its size (and asks its decoder to keep a 128 MiB window)."""
    params = zstandard.ZstdCompressionParameters(window_log=27, enable_ldm=True)
    packer = zstandard.ZstdCompressor(compression_params=params).compressobj()
    frame = packer.compress(np.random.default_rng(2).bytes(1 << 18)) + packer.flush()
    assert zstandard.get_frame_parameters(frame).window_size > compression.MAX_WINDOW
    return frame


def lying_frame() -> bytes:
    """A frame whose header records 1 KiB and whose blocks hold 256 KiB."""
    honest = compression.compress(bytes(1 << 18), 1)
    fake = compression.compress(bytes(1024), 1)
    return fake[:zstandard.frame_header_size(fake)] + honest[zstandard.frame_header_size(honest):]


@pytest.mark.parametrize("make, why", [
    (lambda: b"not zstd at all" * 10, b"not a valid zstd frame"),
    (lambda: compression.compress(bytes(1 << 18), 1)[:-8], b"does not hold the size it records"),  # cut short
    (lambda: compression.compress(bytes(1 << 18), 1) * 2, b"does not hold the size it records"),  # two frames
    (lying_frame, b"not a valid zstd frame"),
    (unsized_frame, b"must record its size"),
], ids=["garbage", "cut-short", "two-frames", "lying-size", "unsized"])
def test_a_malformed_compressed_frame_is_refused_and_gives_back_its_room(make, why):
    async def test(p):
        answers = await hostile_push(p["alice"], 1 << 19, [make()])
        assert answers[1][:1] == wire.LANE_REFUSED and why in answers[1], answers[1]
        assert p["bob"].receiver.stats()["waiting_bytes"] == 0

    run(test)


def test_a_value_in_one_message_that_claims_compression_is_refused():
    async def test(p):
        head = wire.Header("j", "alice", "bob", "1:0", "f@alice#1", "fed", (4,), compression="zstd")
        with pytest.raises(link.LinkError, match="INVALID_ARGUMENT: a value in one message is never compressed"):
            await p["alice"].sender._link.connect("bob").unary(
                link.PUSH_WHOLE, wire.encode_whole(wire.encode_header(head), [memoryview(b"abcd")]), 1)
        assert p["bob"].receiver.stats()["waiting_bytes"] == 0

    run(test)


def test_the_size_limit_counts_the_decompressed_size_and_is_checked_before_anything_is_held():
    async def test(p):
        answers = await hostile_push(p["alice"], 1 << 20, [compression.compress(bytes(1 << 20), 1)])
        assert answers[0][:1] == wire.LANE_REFUSED and b"exceeds this party's messages_max_size_in_bytes" in answers[0]
        assert p["bob"].receiver.stats()["waiting_bytes"] == 0

    run(test, messages_max_size_in_bytes=1 << 19)


def test_a_header_names_its_compression_only_when_compressed():
    head = wire.Header("j", "alice", "bob", "1:0", "f", "fed", (8,), compression="zstd")
    assert wire.decode_header(wire.encode_header(head)) == head
    assert b"compression" not in wire.encode_header(dataclasses.replace(head, compression=None))
    with pytest.raises(wire.WireError, match="'compression' must be one of zstd"):
        wire.decode_header(wire.encode_header(head).replace(b'"zstd"', b'"gzip"'))


@pytest.mark.parametrize("comm, message", [
    ({"compression": "gzip"}, "unknown compression 'gzip'; fed compresses with zstd"),
    ({"compression": {"bob": "lz4"}}, r"\['bob'\]: unknown compression 'lz4'"),
    ({"compression": {"dave": "zstd"}}, r"unknown cross_silo_comm\['compression'\] key\(s\) \['dave'\]"),
    ({"compression": "zstd", "compression_level": 20}, "must be 1 \\(fastest\\) to 19, got 20"),
    ({"compression": 1}, r"cross_silo_comm\['compression'\] must be str or dict or NoneType"),
])
def test_compression_settings_are_checked_at_init(comm, message):
    with pytest.raises(ValueError, match=message):
        build_config(party="alice", addresses={"alice": "a:1", "bob": "b:1"}, config={"cross_silo_comm": comm})


def test_compression_without_zstandard_installed_fails_at_init_saying_what_to_install(monkeypatch):
    monkeypatch.setattr(compression, "available", lambda name: False)
    with pytest.raises(ValueError, match=r"zstd compression needs the zstandard package: "
                                         r"pip install 'rayfed\[compression\]'"):
        build_config(party="alice", addresses={"alice": "a:1", "bob": "b:1"},
                     config={"cross_silo_comm": {"compression": "zstd"}})
    cfg = build_config(party="alice", addresses={"alice": "a:1", "bob": "b:1"},
                       config={"cross_silo_comm": {"compression": {"bob": None}}})
    assert cfg.compression_for("bob") is None


def test_when_a_compressed_value_cannot_go_the_peer_is_told_uncompressed():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        with pytest.raises(FedSendError, match="over messages_max_size_in_bytes"):
            await alice.sender.send("bob", "1:0", "f@alice#1", ready(text_like(2 * LANE_BYTES)))
        with pytest.raises(FedRemoteError, match="over messages_max_size_in_bytes"):
            await asyncio.wait_for(bob.receiver.get("alice", "1:0", "f@alice#1"), 2)
        assert (net().calls.get((bob.address, link.PUSH)), net().calls[(bob.address, link.PUSHES)]) == (None, 1)
        fault = net().fault(bob.address)
        fault.cut_after, fault.cuts = 1000, 100  # every stream of the next value breaks; the notice goes whole
        with pytest.raises(FedSendError, match="gave up after 2 tries"):
            await alice.sender.send("bob", "2:0", "f@alice#2", ready(text_like(LANE_BYTES + 1000)))
        with pytest.raises(FedRemoteError, match="gave up after 2 tries"):
            await asyncio.wait_for(bob.receiver.get("alice", "2:0", "f@alice#2"), 2)

    policy = {"maxAttempts": 2, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
              "retryableStatusCodes": ["INTERNAL"]}
    run(test, chunk_size_in_bytes=CHUNK, compression="zstd", messages_max_size_in_bytes=3 * LANE_BYTES // 2,
        grpc_retry_policy=policy)
