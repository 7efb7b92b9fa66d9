"""The lane (``Pushes``) over real gRPC on loopback, without Ray: what a peer can and cannot do with
a long-lived stream of pushes, and that a lane never holds a receiver's stop or a stream slot."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest
from test_receiver import configs, header, ready, serving, with_bob

from fed._exceptions import FedSendError
from fed._serialization import codec
from fed._transport import grpc_link, wire
from fed._transport.sender import Sender


def whole(value, **fields) -> bytes:
    """A push of ``value`` in one message, as a sender writes it on a lane."""
    encoded = codec.encode(value)
    return wire.encode_whole(header(segments=tuple(s.nbytes for s in encoded.segments), **fields),
                             encoded.segments)


async def lane(channel):
    return channel.stream_stream(grpc_link.PUSHES_METHOD)(timeout=20)


def test_a_refused_push_on_a_lane_is_answered_in_fed_words_and_the_lane_goes_on():
    secret = "secret-object-id-\x1b[31m"

    async def test(sender, receiver, address):
        async with grpc.aio.insecure_channel(address) as channel:
            call = await lane(channel)
            answers = []
            for frame in (b"garbage " + secret.encode(), whole(1, job="other-job"),
                          whole(2, object_id="1:0\n" + secret), whole(3), whole(3)):
                await call.write(frame)
                answers.append(wire.decode_lane_answer(await call.read()))
            await call.done_writing()
            assert await call.read() is grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK
        codes = [refusal[0] if refusal else answer for answer, refusal in answers]
        assert codes == ["INVALID_ARGUMENT", "NOT_FOUND", "INVALID_ARGUMENT", b"ok", b"duplicate"]
        assert all(secret not in (refusal or ("", ""))[1] for _, refusal in answers)  # nothing echoed
        assert await receiver.get("alice", "1:0", "f@alice#1") == 3
        assert receiver.counts()["buffered_bytes"] == 0  # the refused pushes hold nothing

    with_bob(test)


def test_a_lane_that_sends_nothing_is_ended_after_timeout_in_ms():
    async def test(sender, receiver, address):
        async with grpc.aio.insecure_channel(address) as channel:
            call = await lane(channel)
            started = time.monotonic()
            assert await call.read() is grpc.aio.EOF
            assert 0.4 < time.monotonic() - started < 3
            assert await call.code() == grpc.StatusCode.OK

    with_bob(test, timeout_in_ms=500)


def test_small_values_go_on_one_lane_whose_end_costs_the_sender_no_retry():
    async def test(sender, receiver, address):
        await asyncio.gather(*(sender.send("bob", f"1:{i}", f"f{i}", ready(np.full(64, i, np.uint8)))
                               for i in range(200)))
        assert [int((await receiver.get("alice", f"1:{i}", f"f{i}"))[0]) for i in range(200)] == \
            [i % 256 for i in range(200)]
        await asyncio.sleep(1.0)  # bob ends the idle lane
        await sender.send("bob", "2:0", "g", ready("after"))
        assert await receiver.get("alice", "2:0", "g") == "after"
        sent = sender.meter.snapshot()["bob"]
        assert (sent["values"], sent["retries"], sent["failures"]) == (201, 0, 0)

    with_bob(test, timeout_in_ms=500)


def test_a_receiver_with_lanes_open_stops_without_waiting_its_grace():
    alice, bob = configs()

    async def main():
        async with serving(bob, alice) as (receiver, (sender,)):
            await sender.send("bob", "1:0", "f0", ready(1))  # its lane stays open
            async with grpc.aio.insecure_channel(bob.listen_address) as channel:
                idle = await lane(channel)
                await idle.write(whole(5, object_id="1:1"))
                assert wire.decode_lane_answer(await idle.read()) == (b"ok", None)
                started = time.monotonic()
                await receiver.stop(grace=10)
                assert time.monotonic() - started < 2
                assert await idle.code() != grpc.StatusCode.DEADLINE_EXCEEDED

    asyncio.run(main())


def test_a_lane_flooded_by_a_peer_that_never_reads_ends_timeout_in_ms_after_its_last_push():
    async def test(sender, receiver, address):
        async with grpc.aio.insecure_channel(address) as channel:
            call = await lane(channel)
            for _ in range(5_000):  # each refused; the answers pile up unread
                await call.write(b"garbage")
            assert receiver._inbox.lanes == 1
            started = last_change = time.monotonic()
            refused = receiver._inbox.refused
            while receiver._inbox.lanes and time.monotonic() - started < 30:
                await asyncio.sleep(0.05)
                if receiver._inbox.refused != refused:
                    refused, last_change = receiver._inbox.refused, time.monotonic()
            # Served as long as it sends; then held at most timeout_in_ms (and a little) without progress.
            assert receiver._inbox.lanes == 0 and time.monotonic() - last_change < 3
            call.cancel()
        assert receiver._inbox.refused > 0

    with_bob(test, timeout_in_ms=1000)


def test_a_push_to_a_server_that_is_not_this_fed_fails_at_once_saying_to_run_one_fed_version():
    """Another fed version (no ``Pushes``), or not fed at all: UNIMPLEMENTED is no reason to retry."""
    alice, bob = configs(timeout_in_ms=20_000)

    async def main():
        server = grpc.aio.server()  # serves no method at all
        server.add_insecure_port(bob.listen_address)
        await server.start()
        sender = Sender(alice)
        try:
            started = time.monotonic()
            with pytest.raises(FedSendError, match="UNIMPLEMENTED.*every party must run the same fed version"):
                await sender.send("bob", "1:0", "f@alice#1", ready(b"small"))
            assert time.monotonic() - started < 5  # not retried until timeout_in_ms
        finally:
            await sender.stop()
            await server.stop(0)

    asyncio.run(main())
