"""The sender's policy over the in-memory link: retries, room, duplicates, the window, and telling
the peer what will not come. No sockets, no Ray: every failure is one the test sets on the link."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from memory_parties import elapsed, net, now, parties, ready

from fed._exceptions import FedRemoteError, FedSendError
from fed._serialization import codec
from fed._transport import link, wire

CHUNK = 1024


def run(test, *names, **kw):
    """Run one case; it fails instead of hanging when a value never comes (each ends within seconds)."""
    async def main():
        async with parties(*(names or ("alice", "bob")), **kw) as made:
            await asyncio.wait_for(test(made), 30)
    asyncio.run(main())


def test_a_stream_cut_midway_is_sent_again_and_arrives_once_intact():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        net().fault(bob.address).cut_after = 20 * CHUNK
        value = np.arange(64 * CHUNK, dtype=np.uint8)
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))
        np.testing.assert_array_equal(await bob.receiver.get("alice", "1:0", "f@alice#1"), value)
        sent = alice.sender.meter.snapshot()["bob"]
        assert (sent["values"], sent["retries"], sent["failures"]) == (1, 1, 0)
        assert bob.receiver.counts() == {"values": 1, "duplicates": 0, "buffered_bytes": 0}
        assert net().calls[(bob.address, link.PUSH)] == 2

    run(test, chunk_size_in_bytes=CHUNK)


def test_retries_stop_at_max_attempts_of_grpc_retry_policy_with_the_reason():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        fault = net().fault(bob.address)
        # every stream of the value, before its first chunk is through (so no try resumes with
        # more than the one before); not the notice
        fault.cut_after, fault.cuts = CHUNK // 2, 100
        started = now()
        with pytest.raises(FedSendError, match=r"INTERNAL: connection cut \(gave up after 3 tries: "
                                               r"grpc_retry_policy maxAttempts=3\)"):
            await alice.sender.send("bob", "1:0", "f@alice#1", ready(np.zeros(8 * CHUNK, np.uint8)))
        assert net().calls[(bob.address, link.PUSH)] == 3
        assert net().calls[(bob.address, link.PUSHES)] == 1  # then the notice that it failed, on the lane
        assert elapsed(started) < 2  # backoffs of at most 0.1 and 0.2 s, jittered
        with pytest.raises(FedRemoteError, match="gave up after 3 tries"):  # bob was told
            await asyncio.wait_for(bob.receiver.get("alice", "1:0", "f@alice#1"), 1)

    policy = {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
              "retryableStatusCodes": ["INTERNAL"]}
    run(test, chunk_size_in_bytes=CHUNK, grpc_retry_policy=policy)


def test_a_refusal_that_is_not_retryable_fails_the_push_at_its_first_try():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        net().claims["alice"] = frozenset({"carol"})  # the names alice's calls carry
        with pytest.raises(FedSendError, match="PERMISSION_DENIED: the client certificate does not name "
                                               "the claimed source party 'alice'"):
            await alice.sender.send("bob", "1:0", "f@alice#1", ready(1))
        assert alice.sender.meter.snapshot()["bob"]["retries"] == 0
        assert bob.receiver.stats()["refused"] >= 1 and bob.receiver.counts()["values"] == 0

    run(test, tls=_tls())


def _tls():
    """TLS configs of alice and bob (the memory link checks no certificate; the receiver checks names)."""
    return {party: {"ca_cert": CERTS / "ca.crt", "cert": CERTS / f"{party}.crt", "key": CERTS / f"{party}.key"}
            for party in ("alice", "bob")}


@pytest.fixture(autouse=True, scope="module")
def _certs(tmp_path_factory):
    global CERTS
    from fed._security.certs import make_certs

    CERTS = tmp_path_factory.mktemp("certs")
    make_certs(["alice", "bob"], CERTS)


def test_a_push_the_receiver_has_no_room_for_waits_past_timeout_in_ms_until_room_frees():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        first = np.zeros(3000, np.uint8)
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(first))
        second = asyncio.ensure_future(alice.sender.send("bob", "2:0", "g@alice#2", ready(np.ones(3000, np.uint8))))
        await asyncio.sleep(1.5)  # three times timeout_in_ms
        assert not second.done()
        assert alice.sender.meter.snapshot()["bob"]["retries"] >= 3
        assert bob.receiver.stats()["waiting_values"] == 1
        await bob.receiver.get("alice", "1:0", "f@alice#1")  # consumed: room frees
        await asyncio.wait_for(second, 2)
        np.testing.assert_array_equal(await bob.receiver.get("alice", "2:0", "g@alice#2"), np.ones(3000, np.uint8))

    run(test, timeout_in_ms=500, max_buffered_bytes=12_000)  # one value costs about 7.8 KB there


def test_a_second_push_of_a_value_is_a_duplicate_and_the_value_is_handed_out_once():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        for _ in range(2):
            await alice.sender.send("bob", "1:0", "f@alice#1", ready({"v": 1}))
        assert bob.receiver.counts() == {"values": 1, "duplicates": 1, "buffered_bytes": bob.receiver.counts()[
            "buffered_bytes"]}
        assert await bob.receiver.get("alice", "1:0", "f@alice#1") == {"v": 1}
        with pytest.raises(RuntimeError, match="already handed out"):
            await bob.receiver.get("alice", "1:0", "f@alice#1")

    run(test)


@pytest.mark.parametrize("window", [CHUNK, 4 * CHUNK])
def test_a_push_never_has_more_than_its_window_unacknowledged(window):
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        net().fault(bob.address).read_delay = 0.001  # a receiver slower than the sender
        value = np.arange(48 * CHUNK, dtype=np.uint8)
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))
        np.testing.assert_array_equal(await bob.receiver.get("alice", "1:0", "f@alice#1"), value)
        header = wire.Header("j", "alice", "bob", "1:0", "f@alice#1", "fed", (1,))
        head = len(wire.encode_header(header)) + 200  # the header frame, whatever its segments say
        assert window <= net().peak_unread[bob.address] <= window + CHUNK + head

    run(test, chunk_size_in_bytes=CHUNK, inflight_window_in_bytes=window)


def test_a_push_sends_its_first_window_behind_the_header_without_waiting_to_be_admitted():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        net().fault(bob.address).read_delay = 0.3  # bob reads the header 0.3 s after it was written
        push = asyncio.ensure_future(alice.sender.send("bob", "1:0", "f@alice#1",
                                                       ready(np.arange(16 * CHUNK, dtype=np.uint8))))
        await asyncio.sleep(0.15)  # bob has not admitted it yet: a round trip on a long link
        assert net().peak_unread[bob.address] >= 4 * CHUNK  # the window went with the header
        net().fault(bob.address).read_delay = 0
        await asyncio.wait_for(push, 5)

    run(test, chunk_size_in_bytes=CHUNK, inflight_window_in_bytes=4 * CHUNK)


def test_after_no_room_a_push_sends_data_only_once_admitted_so_asking_again_costs_no_window():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        first = np.zeros(3000, np.uint8)
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(first))  # holds bob's room
        value = np.ones(8 * CHUNK, np.uint8)
        second = asyncio.ensure_future(alice.sender.send("bob", "2:0", "g@alice#2", ready(value)))
        while alice.sender.meter.snapshot()["bob"]["retries"] < 1:  # the first try was refused: no room
            await asyncio.sleep(0.01)
        net().peak_unread.clear()
        while alice.sender.meter.snapshot()["bob"]["retries"] < 3:  # two more tries, refused too
            await asyncio.sleep(0.01)
        assert net().peak_unread[bob.address] < CHUNK  # each wrote its header and no data
        await bob.receiver.get("alice", "1:0", "f@alice#1")  # room frees
        await asyncio.wait_for(second, 5)
        np.testing.assert_array_equal(await bob.receiver.get("alice", "2:0", "g@alice#2"), value)

    run(test, chunk_size_in_bytes=CHUNK, inflight_window_in_bytes=4 * CHUNK, max_buffered_bytes=16_000)  # one of them


def test_a_failed_task_reaches_the_peer_as_its_error():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        failed = asyncio.get_running_loop().create_future()
        failed.set_exception(ValueError("bad input"))
        sent = await alice.sender.send("bob", "1:0", "f@alice#1", [failed])
        assert sent.error
        with pytest.raises(FedRemoteError, match="ValueError raised at party 'alice'"):
            await bob.receiver.get("alice", "1:0", "f@alice#1")

    run(test)


def test_a_value_over_the_size_limit_is_not_sent_and_the_peer_is_told():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        with pytest.raises(FedSendError, match="over messages_max_size_in_bytes=4096"):
            await alice.sender.send("bob", "1:0", "f@alice#1", ready(np.zeros(5000, np.uint8)))
        with pytest.raises(FedRemoteError, match="over messages_max_size_in_bytes"):
            await bob.receiver.get("alice", "1:0", "f@alice#1")
        assert bob.receiver.stats()["waiting_peak"] < 4096  # only the notice was held

    run(test, messages_max_size_in_bytes=4096)


def test_a_push_that_stalls_gives_back_its_room_after_timeout_in_ms():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        stream = await alice.sender._link.connect("bob").stream(link.PUSH, 1)
        head = wire.Header("j", "alice", "bob", "1:0", "f@alice#1", "fed", (50_000,))
        await stream.write(wire.encode_header(head))
        assert wire.decode_ack(await stream.read()) == 0  # admitted
        assert bob.receiver.stats()["waiting_bytes"] > 50_000
        started = now()
        code, text, _ = wire.decode_lane_answer(await stream.read())[1]  # the refusal frame, then its status
        assert code == "DEADLINE_EXCEEDED" and text.startswith("no data for 0.5 s")
        with pytest.raises(link.LinkError, match="DEADLINE_EXCEEDED: no data for 0.5 s"):
            await stream.read()
        assert 0.4 < elapsed(started) < 1.5
        assert bob.receiver.stats()["waiting_bytes"] == 0

    run(test, timeout_in_ms=500)


def test_a_push_cut_near_its_end_resumes_from_what_the_receiver_acknowledged():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        value = np.arange(64 * CHUNK // 8, dtype=np.int64)  # 64 chunks
        net().fault(bob.address).cut_after = 60 * CHUNK
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))
        got = await asyncio.wait_for(bob.receiver.get("alice", "1:0", "f@alice#1"), 5)
        assert np.array_equal(got, value)
        assert net().calls[(bob.address, link.PUSH)] == 2
        # The second try sent what was not acknowledged when the cut came: at most a window and a
        # chunk again (4 + 1 chunks here, with two headers; from byte 0 it would be 60 chunks).
        resent = net().carried[bob.address] - value.nbytes
        assert 0 < resent <= 5 * CHUNK + 2048, resent / CHUNK
        stats = bob.receiver.stats()
        assert stats["waiting_bytes"] == 0 and stats["peers"]["alice"]["duplicates"] == 0

    run(test, chunk_size_in_bytes=CHUNK, inflight_window_in_bytes=4 * CHUNK)


def array_push(n: int) -> tuple[wire.Header, list[bytes]]:
    """The header and data frames of a push of an array of ``n`` bytes."""
    segments, copied = codec.encode(np.arange(n, dtype=np.uint8))
    head = wire.Header("j", "alice", "bob", "1:0", "f@alice#1", "fed", tuple(len(s) for s in segments), copied)
    return head, list(wire.iter_payload(segments, CHUNK))


async def broken_push(alice, head: wire.Header, frames: list[bytes], how: str = "cancel") -> None:
    """A push of ``head`` whose connection breaks once ``frames`` arrived: its call is cancelled,
    or its stream ends early (as gRPC ends it at the receiver when the connection is cut)."""
    stream = await alice.sender._link.connect("bob").stream(link.PUSH, 1)
    await stream.write(wire.encode_header(head))
    assert wire.decode_ack(await stream.read()) == 0
    offset = 0
    for frame in frames:
        await stream.write(frame)
        offset += len(frame)
        assert wire.decode_ack(await stream.read()) == offset
    if how == "cancel":
        stream.cancel()
        await asyncio.sleep(0.05)
    else:
        await stream.done_writing()
        assert wire.decode_lane_answer(await stream.read())[1][1].startswith("truncated payload")


@pytest.mark.parametrize("how", ["cancel", "end"])
def test_a_broken_push_is_kept_for_timeout_in_ms_then_gives_back_its_room(how):
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        head, frames = array_push(8 * CHUNK)
        await broken_push(alice, head, frames[:3], how)
        assert bob.receiver.stats()["waiting_bytes"] > 8 * CHUNK  # kept, with the room it holds
        await asyncio.sleep(0.7)
        assert bob.receiver.stats()["waiting_bytes"] == 0

    run(test, chunk_size_in_bytes=CHUNK, timeout_in_ms=500)


@pytest.mark.parametrize("change, first_ack", [
    ({}, 3 * CHUNK),                          # the same value, asking to resume: from where it broke
    ({"resume": False}, "busy"),              # a try that does not ask to resume waits for the kept one
    ({"fingerprint": "f@alice#2"}, "busy"),   # as does another value under the same id
    ({"object_id": "2:0"}, 0),                # another id has nothing kept
])
def test_only_a_resuming_header_for_the_same_value_takes_what_a_broken_push_kept(change, first_ack):
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        head, frames = array_push(8 * CHUNK)
        await broken_push(alice, head, frames[:3])
        stream = await alice.sender._link.connect("bob").stream(link.PUSH, 1)
        await stream.write(wire.encode_header(dataclasses.replace(head, **{"resume": True, **change})))
        first = await stream.read()
        if first_ack == "busy":
            assert first[:1] == wire.LANE_REFUSED and b"already being received" in first
            return
        assert wire.decode_ack(first) == first_ack
        rest = b"".join(frames)[first_ack:]
        for offset in range(0, len(rest), CHUNK):
            await stream.write(rest[offset:offset + CHUNK])
            assert wire.decode_ack(await stream.read()) == first_ack + min(offset + CHUNK, len(rest))
        await stream.done_writing()
        assert await stream.read() == b"ok"
        key = ("alice", "1:0") if not change else ("alice", "2:0")
        got = await bob.receiver.get(*key, head.fingerprint)
        assert np.array_equal(got, np.arange(8 * CHUNK, dtype=np.uint8))

    run(test, chunk_size_in_bytes=CHUNK)


def test_a_push_whose_sender_reads_no_acks_gives_back_its_room_after_timeout_in_ms():
    # While its ack waits, the receiver reads nothing more of the stream (gRPC would hold up to an
    # HTTP/2 window of it): the push ends after timeout_in_ms, without a refusal frame that would
    # wait the same way.
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        net().fault(bob.address).unread = True
        stream = await alice.sender._link.connect("bob").stream(link.PUSH, 1)
        head = wire.Header("j", "alice", "bob", "1:0", "f@alice#1", "fed", (50_000,))
        await stream.write(wire.encode_header(head))
        await asyncio.sleep(0.2)
        assert bob.receiver.stats()["waiting_bytes"] > 50_000  # admitted; its ack is not taken
        started = now()
        with pytest.raises(link.LinkError, match="DEADLINE_EXCEEDED: acknowledgements not read for 0.5 s"):
            await stream.read()
        assert 0.2 < elapsed(started) < 1.5
        assert bob.receiver.stats()["waiting_bytes"] == 0

    run(test, timeout_in_ms=500)


def test_a_peer_that_never_listens_fails_the_push_after_timeout_in_ms():
    async def test(p):
        started = now()
        with pytest.raises(FedSendError, match=r"could not push 1:0 .* no progress for 0.5 s"):
            await p["alice"].sender.send("bob", "1:0", "f@alice#1", ready(np.zeros(4 * CHUNK, np.uint8)))
        assert 0.4 < elapsed(started) < 3.5  # and up to 2 s trying to tell bob it will not come

    run(test, serving=("alice",), timeout_in_ms=500, chunk_size_in_bytes=CHUNK)


@pytest.mark.parametrize("method", ["on_push_whole", "on_push", "on_ping"])
def test_a_fault_of_the_receiver_reaches_the_sender_without_its_text(method, monkeypatch, caplog):
    from fed._transport.inbox import Inbox

    async def broken(self, request, caller):
        raise KeyError("secret-of-bob")

    monkeypatch.setattr(Inbox, method, broken)

    async def test(p):
        alice = p["alice"]
        if method == "on_ping":
            answer = alice.sender._link.connect("bob").unary(link.PING, wire.encode_ping("j", "alice"), 1)
            with pytest.raises(link.LinkError) as failed:
                await answer
            error = str(failed.value)
        else:
            with pytest.raises(FedSendError) as failed:
                value = np.zeros(8 * CHUNK if method == "on_push" else 10, np.uint8)
                await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))
            error = str(failed.value)
        assert "INTERNAL: internal error at the receiver; its log says more" in error
        assert "secret" not in error
        assert "secret-of-bob" in caplog.text  # bob's log has it

    policy = {"maxAttempts": 2, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
              "retryableStatusCodes": ["INTERNAL"]}
    run(test, chunk_size_in_bytes=CHUNK, grpc_retry_policy=policy)
