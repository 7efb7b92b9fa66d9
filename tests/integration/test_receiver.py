"""The receiver and sender over real gRPC on loopback, without Ray: what is taken and what is refused."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

import grpc
import numpy as np
import pytest
from harness import free_ports

from fed._config import build_config
from fed._exceptions import FedDivergenceError, FedError, FedPeerLostError, FedRemoteError, FedSendError
from fed._serialization import codec
from fed._transport import grpc_link, wire
from fed._transport.admission import holding_cost
from fed._transport.receiver import Receiver
from fed._transport.sender import Sender


class Point:
    def __init__(self, x):
        self.x = x


def configs(**comm):
    ports = free_ports(2)
    addrs = {"alice": f"127.0.0.1:{ports[0]}", "bob": f"127.0.0.1:{ports[1]}"}
    config = {"cross_silo_comm": {"timeout_in_ms": 3000, **comm}}
    return (build_config(party="alice", addresses=addrs, config=config, job_name="j"),
            build_config(party="bob", addresses=addrs, config=config, job_name="j"))


def ready(value):
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return [fut]


def failed(exc):
    fut = asyncio.get_running_loop().create_future()
    fut.set_exception(exc)
    return [fut]


class Refusal(tuple):
    """The receiver's refusal of a hand-made call: (status, details); equal to its status alone."""

    def __eq__(self, other):
        return self[0] == other if isinstance(other, grpc.StatusCode) else tuple.__eq__(self, other)

    __hash__ = tuple.__hash__


async def raw_push(address, frames):
    """Push hand-made frames as a sender would (data only once the header is admitted); returns
    the final answer (after the acks) or the receiver's ``Refusal``."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(grpc_link.PUSH_METHOD)(timeout=5)
        answers = []
        try:
            for i, frame in enumerate(frames):
                await call.write(frame)
                if i == 0:
                    answers.append(await call.read())
                    if answers[-1] is grpc.aio.EOF or wire.decode_ack(answers[-1]) is None:
                        break
            else:
                await call.done_writing()
                while (message := await call.read()) is not grpc.aio.EOF:
                    answers.append(message)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass
        code = await call.code()
        if code != grpc.StatusCode.OK:
            return Refusal((code, await call.details()))
        assert all(wire.decode_ack(m) is not None for m in answers[:-1])
        return answers[-1]


def cost(value=None, segments=None):
    """What a push of ``value`` (or of a payload laid out as ``segments``) holds at the receiver."""
    segments = segments or tuple(s.nbytes for s in codec.encode(value).segments)
    head = wire.Header(job="j", src="alice", dst="bob", object_id="1:0", fingerprint="f@alice#1",
                       codec="fed", segments=segments)
    return holding_cost(head, len(wire.encode_header(head)))


FLAT = (16, 2984)  # a hand-made 3000-byte payload whose records are short


def header(**fields):
    base = dict(job="j", src="alice", dst="bob", object_id="1:0", fingerprint="f@alice#1",
                codec="fed", segments=(3,))
    return wire.encode_header(wire.Header(**{**base, **fields}))


@contextlib.asynccontextmanager
async def serving(receiver_config, *sender_configs):
    """A started receiver and one sender per config; all stopped at the end."""
    receiver, senders = Receiver(receiver_config), [Sender(c) for c in sender_configs]
    await receiver.start()
    try:
        yield receiver, senders
    finally:
        for sender in senders:
            await sender.stop()
        await receiver.stop(0)


def with_bob(test, **comm):
    """Run ``test(alice_sender, bob_receiver, bob_address)`` against a live receiver at bob."""
    alice, bob = configs(**comm)

    async def main():
        async with serving(bob, alice) as (receiver, (sender,)):
            await test(sender, receiver, bob.listen_address)

    asyncio.run(main())


@pytest.mark.parametrize("size", [0, 1, 63, 64, 1023, 1024, 1025, 5000])
def test_values_around_chunk_boundaries_arrive_intact(size):
    async def test(sender, receiver, _):
        value = {"a": np.arange(size, dtype=np.uint8), "b": b"x" * size}
        sent = await sender.send("bob", "1:0", "f@alice#1", ready(value))
        got = await receiver.get("alice", "1:0", "f@alice#1")
        assert sent.nbytes > 0 and sent.codec == "fed"
        np.testing.assert_array_equal(got["a"], value["a"])
        assert got["b"] == value["b"]

    with_bob(test, chunk_size_in_bytes=1024)


def test_a_second_push_of_a_key_is_a_duplicate_and_not_stored():
    async def test(sender, receiver, address):
        await sender.send("bob", "1:0", "f@alice#1", ready(1))
        assert await raw_push(address, [header(), b"abc"]) == b"duplicate"
        assert await receiver.get("alice", "1:0", "f@alice#1") == 1
        assert await raw_push(address, [header(), b"abc"]) == b"duplicate"
        assert receiver.counts() == {"values": 1, "duplicates": 2, "buffered_bytes": 0}

    with_bob(test)


def test_a_second_push_of_a_value_being_received_is_refused_and_charged_nothing():
    encoded = codec.encode("the value")
    sizes = tuple(s.nbytes for s in encoded.segments)
    head = header(segments=sizes)
    payload = b"".join(wire.iter_payload(encoded.segments, 1 << 20))

    async def test(sender, receiver, address):
        async with grpc.aio.insecure_channel(address) as channel:
            first = channel.stream_stream(grpc_link.PUSH_METHOD)(timeout=10)
            await first.write(head)
            assert wire.decode_ack(await first.read()) == 0  # admitted, its payload still to come
            held = receiver.counts()["buffered_bytes"]
            assert held == cost(segments=sizes)

            second = await raw_push(address, [head, payload])

            assert second == Refusal((grpc.StatusCode.UNAVAILABLE, "a push of this value is already being received"))
            assert receiver.counts()["buffered_bytes"] == held
            await first.write(payload)
            await first.done_writing()
            answers = []
            while (message := await first.read()) is not grpc.aio.EOF:
                answers.append(message)
            assert answers[-1] == b"ok"
        assert await receiver.get("alice", "1:0", "f@alice#1") == "the value"
        assert receiver.counts()["buffered_bytes"] == 0

    with_bob(test)


def test_settle_counts_the_values_still_awaited_and_waits_for_late_ones():
    async def test(sender, receiver, _):
        assert await receiver.settle(0.1) == 0
        waits = [asyncio.ensure_future(receiver.get("alice", f"{i}:0", f"f@alice#{i}")) for i in (1, 2)]
        await asyncio.sleep(0)
        assert await receiver.settle(0.1) == 2
        asyncio.get_running_loop().call_later(0.2, asyncio.ensure_future,
                                              sender.send("bob", "1:0", "f@alice#1", ready(1)))
        assert await receiver.settle(2) == 1  # the late one came, the other never will
        assert await waits[0] == 1
        waits[1].cancel()

    with_bob(test)


BIG = np.zeros(10_000, dtype=np.uint8)  # streamed: over one 1024-byte chunk
CAP = cost(BIG) + cost(segments=FLAT) - 1  # room for one of them, not both


def test_values_nobody_consumes_stop_at_max_buffered_bytes_and_honest_pushes_wait():
    async def test(sender, receiver, address):
        big = BIG
        await sender.send("bob", "1:0", "f@alice#1", ready(big))
        held = receiver.counts()["buffered_bytes"]
        assert held == cost(big) > 10_000  # the payload, what it may decode to, its header and slot
        # A flood of frames for keys nobody asks for: refused once the cap is reached, as
        # UNAVAILABLE marked "no room", with a message that says what to do; nothing more is held.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await unary_push(address, header(object_id="2:0", segments=FLAT), b"x" * 3000)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert grpc_link.is_no_room(refused.value.trailing_metadata())
        assert f"max_buffered_bytes={CAP}" in refused.value.details()
        assert receiver.counts()["buffered_bytes"] == held
        # A value over the cap on its own can never fit: refused at once, not retried.
        assert await raw_push(address, [header(object_id="4:0", segments=(CAP,))]) \
            == grpc.StatusCode.RESOURCE_EXHAUSTED
        # An honest push that finds no room waits as long as the receiver answers so, well past
        # timeout_in_ms (1.5 s): the receiver is live, only behind.
        later = asyncio.ensure_future(sender.send("bob", "5:0", "f@alice#5", ready(big)))
        await asyncio.sleep(3.0)
        assert not later.done()
        # Consuming frees the buffer; the waiting push gets through.
        np.testing.assert_array_equal(await receiver.get("alice", "1:0", "f@alice#1"), big)
        assert (await later).nbytes > 0
        np.testing.assert_array_equal(await receiver.get("alice", "5:0", "f@alice#5"), big)
        assert receiver.counts()["buffered_bytes"] == 0
        assert sender.meter.snapshot()["bob"]["retries"] > 0

    with_bob(test, chunk_size_in_bytes=1024, max_buffered_bytes=CAP, timeout_in_ms=1500)


@pytest.mark.parametrize("size", [200_000, 8 << 20])
def test_a_refused_push_whose_first_window_went_with_its_header_fails_with_the_receivers_status(size):
    # The sender does not wait for admission before its first window, so the refusal meets data
    # on the way (all of it, or writes held by gRPC's flow control, which make gRPC report INTERNAL
    # instead of the status): the receiver's refusal frame still decides, at the first try.
    async def test(sender, receiver, address):
        with pytest.raises(FedSendError, match=r"RESOURCE_EXHAUSTED: a value that needs \d+ bytes at party "
                                               r"'bob' .* exceeds its max_buffered_bytes=100000"):
            await sender.send("bob", "1:0", "f@alice#1", ready(np.zeros(size, np.uint8)))
        assert sender.meter.snapshot()["bob"]["retries"] == 0
        with pytest.raises(FedRemoteError, match="exceeds its max_buffered_bytes"):  # only the notice is held
            await receiver.get("alice", "1:0", "f@alice#1")
        assert receiver.counts()["buffered_bytes"] == 0

    with_bob(test, chunk_size_in_bytes=1024 if size < 1 << 20 else 1 << 20, max_buffered_bytes=100_000)


def test_get_many_returns_the_values_in_order_or_the_first_error():
    async def test(sender, receiver, address):
        both = asyncio.ensure_future(
            receiver.get_many([("alice", "2:0", "f@alice#2"), ("alice", "1:0", "f@alice#1")]))
        await sender.send("bob", "1:0", "f@alice#1", ready(1))
        await asyncio.sleep(0.1)
        assert not both.done()  # the values of one call come together
        await sender.send("bob", "2:0", "f@alice#2", ready(2))
        assert await both == [2, 1]
        # An error raises at once, while another value of the call has not come yet.
        failing = asyncio.ensure_future(
            receiver.get_many([("alice", "3:0", "f@alice#3"), ("alice", "4:0", "f@alice#4")]))
        await sender.send("bob", "4:0", "f@alice#4", failed(ValueError("boom")))
        with pytest.raises(FedRemoteError, match="ValueError"):
            await asyncio.wait_for(failing, 5)
        # The value that comes later is still taken, not left holding room.
        await sender.send("bob", "3:0", "f@alice#3", ready(np.zeros(100)))
        await until(lambda: receiver.counts()["values"] == 4 and receiver.counts()["buffered_bytes"] == 0)
        with pytest.raises(RuntimeError, match="already handed out"):
            await receiver.get("alice", "3:0", "f@alice#3")

    with_bob(test)


async def until(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_a_value_the_program_waits_for_gets_past_values_that_came_early():
    early = np.ones(10_000, dtype=np.uint8)

    async def test(sender, receiver, address):
        await sender.send("bob", "1:0", "f@alice#1", ready(early))  # arrived before it is asked for
        # The program waits for 2:0 first: it gets in beyond the cap, one such value at a time.
        wait = asyncio.ensure_future(receiver.get("alice", "2:0", "f@alice#2"))
        await asyncio.sleep(0.1)
        await sender.send("bob", "2:0", "f@alice#2", ready(early * 2))
        assert (await wait)[0] == 2
        stats = receiver.stats()
        assert stats["waiting_bytes"] <= CAP and stats["waiting_peak"] == 2 * cost(early) > CAP
        # A value nobody waits for still finds no room.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await unary_push(address, header(object_id="3:0", segments=FLAT), b"x" * 3000)
        assert grpc_link.is_no_room(refused.value.trailing_metadata())
        assert (await receiver.get("alice", "1:0", "f@alice#1"))[0] == 1

    with_bob(test, chunk_size_in_bytes=1024, max_buffered_bytes=CAP)


async def unary_push(address, head, payload):
    """One ``PushWhole`` of hand-made frames; raises the refusal."""
    async with grpc.aio.insecure_channel(address) as channel:
        return await channel.unary_unary(grpc_link.PUSH_WHOLE_METHOD)(
            wire.encode_whole(head, [memoryview(payload)]), timeout=5)


def test_a_push_that_breaks_off_keeps_what_it_held_for_timeout_in_ms_then_frees_it():
    async def test(sender, receiver, address):
        assert await raw_push(address, [header(segments=FLAT), b"x" * 1000]) \
            == grpc.StatusCode.INVALID_ARGUMENT  # truncated
        assert receiver.counts()["buffered_bytes"] > 1000  # kept for a try that resumes it
        started = time.monotonic()
        while receiver.counts()["buffered_bytes"] and time.monotonic() - started < 5:
            await asyncio.sleep(0.05)
        assert receiver.counts()["buffered_bytes"] == 0 and time.monotonic() - started < 2
        await sender.send("bob", "1:0", "f@alice#1", ready(b"y" * 3000))
        assert await receiver.get("alice", "1:0", "f@alice#1") == b"y" * 3000

    with_bob(test, chunk_size_in_bytes=1024, max_buffered_bytes=CAP, timeout_in_ms=500)


@pytest.mark.parametrize("frames, code, words", [
    ([], grpc.StatusCode.INVALID_ARGUMENT, "empty push"),
    ([b"garbage"], grpc.StatusCode.INVALID_ARGUMENT, "bad magic"),
    ([header(job="other")], grpc.StatusCode.NOT_FOUND, "unknown job"),
    ([header(src="mallory")], grpc.StatusCode.PERMISSION_DENIED, "unknown source party"),
    ([header(src="bob")], grpc.StatusCode.PERMISSION_DENIED, "unknown source party"),
    ([header(dst="carol")], grpc.StatusCode.INVALID_ARGUMENT, "addressed to another party"),
    # over messages_max_size_in_bytes (1 MiB) but well within max_buffered_bytes (32 GiB)
    ([header(segments=(1 << 24,))], grpc.StatusCode.RESOURCE_EXHAUSTED, "messages_max_size_in_bytes=1048576"),
    ([header(), b"ab"], grpc.StatusCode.INVALID_ARGUMENT, "truncated payload: 2 of 3"),
    ([header(), b"abcd"], grpc.StatusCode.INVALID_ARGUMENT, "payload longer than the declared 3"),
    ([header(), b"abc"], grpc.StatusCode.INVALID_ARGUMENT, "value refused: malformed value"),  # not fed's records
])
def test_bad_pushes_are_refused_and_the_receiver_keeps_serving(frames, code, words):
    async def test(sender, receiver, address):
        refusal = await raw_push(address, frames)
        assert refusal == code and words in refusal[1], refusal
        await sender.send("bob", "2:0", "g@alice#2", ready("still fine"))
        assert await receiver.get("alice", "2:0", "g@alice#2") == "still fine"

    with_bob(test, messages_max_size_in_bytes=1 << 20)


def test_a_value_over_the_limit_is_refused_by_the_sender_and_the_peer_is_told():
    async def test(sender, receiver, _):
        with pytest.raises(FedSendError, match="messages_max_size_in_bytes"):
            await sender.send("bob", "1:0", "f@alice#1", ready(b"x" * 5000))
        with pytest.raises(FedRemoteError, match="FedSendError"):
            await receiver.get("alice", "1:0", "f@alice#1")

    with_bob(test, messages_max_size_in_bytes=4096, expose_error_trace=True)


def test_a_failed_task_is_pushed_as_an_error():
    async def test(sender, receiver, _):
        assert (await sender.send("bob", "1:0", "f@alice#1", failed(KeyError("nope")))).codec == "error"
        with pytest.raises(FedRemoteError) as info:
            await receiver.get("alice", "1:0", "f@alice#1")
        assert (info.value.src_party, info.value.error_type, info.value.cause) == ("alice", "KeyError", None)

    with_bob(test)


def test_a_refused_class_fails_both_sides():
    async def test(sender, receiver, _):
        # bob waits for the value: his wait ends with the reason, naming the class (his own log
        # and error; alice gets only fed's fixed words).
        waiting = asyncio.ensure_future(receiver.get("alice", "1:0", "f@alice#1"))
        with pytest.raises(FedSendError, match="class this party does not accept") as info:
            await sender.send("bob", "1:0", "f@alice#1", ready(Point(1)))
        assert "Point" not in str(info.value)
        with pytest.raises(FedError, match="test_receiver.Point is not on its serializing_allowed_list"):
            await waiting
        # bob asks only later: the refused value left nothing at bob, and alice's notice says why.
        with pytest.raises(FedSendError):
            await sender.send("bob", "2:0", "f@alice#2", ready(Point(2)))
        with pytest.raises(FedRemoteError, match="FedSendError raised at party 'alice': could not push 2:0"):
            await receiver.get("alice", "2:0", "f@alice#2")

    with_bob(test)


def test_a_different_call_at_the_same_step_is_divergence():
    async def test(sender, receiver, _):
        await sender.send("bob", "1:0", "f@alice#1", ready(1))
        with pytest.raises(FedDivergenceError, match="diverged"):
            await receiver.get("alice", "1:0", "other@alice#1")

    with_bob(test)


def test_a_peer_that_is_not_there_fails_after_the_timeout():
    alice, _ = configs(timeout_in_ms=500)

    async def main():
        sender = Sender(alice)
        with pytest.raises(FedSendError, match="'bob'"):
            await sender.send("bob", "1:0", "f@alice#1", ready(1))
        with pytest.raises(FedSendError, match="did not answer"):
            await sender.ping("bob")
        await sender.stop()

    asyncio.run(main())


def test_values_are_keyed_by_their_source_party():
    ports = free_ports(3)
    addrs = {p: f"127.0.0.1:{port}" for p, port in zip(("alice", "bob", "carol"), ports)}
    alice, bob, carol = (build_config(party=p, addresses=addrs, job_name="j") for p in addrs)

    async def main():
        async with serving(bob, alice, carol) as (receiver, (from_alice, from_carol)):
            await from_alice.send("bob", "7:0", "f@alice#7", ready("a"))
            await from_carol.send("bob", "7:0", "f@carol#7", ready("c"))
            assert await receiver.get("carol", "7:0", "f@carol#7") == "c"
            assert await receiver.get("alice", "7:0", "f@alice#7") == "a"
            assert receiver.counts() == {"values": 2, "duplicates": 0, "buffered_bytes": 0}

    asyncio.run(main())


def test_a_slow_but_live_transfer_outlasts_timeout_in_ms(monkeypatch):
    from fed._transport import inbox as receiver_module

    assemble = receiver_module._assemble

    class Slowly:
        def __init__(self, stream):
            self.stream = stream

        async def next(self):
            await asyncio.sleep(0.05)  # a slow link: about 1.3 MB/s with 64 KiB chunks
            return await self.stream.next()

        async def send(self, frame):
            await self.stream.send(frame)

    monkeypatch.setattr(receiver_module, "_assemble",
                        lambda stream, total, patience, *unpack: assemble(Slowly(stream), total, patience, *unpack))

    async def test(sender, receiver, _):
        value = np.arange(3 * 2**20, dtype=np.uint8)
        started = asyncio.get_running_loop().time()
        await sender.send("bob", "1:0", "f@alice#1", ready(value))
        assert asyncio.get_running_loop().time() - started > 1.5  # longer than timeout_in_ms
        np.testing.assert_array_equal(await receiver.get("alice", "1:0", "f@alice#1"), value)

    with_bob(test, timeout_in_ms=1000, chunk_size_in_bytes=64 * 1024)


def test_a_stalled_transfer_fails_after_timeout_in_ms(monkeypatch):
    from fed._transport import inbox as receiver_module

    async def stuck(stream, total, patience, *unpack):
        await asyncio.sleep(3600)

    monkeypatch.setattr(receiver_module, "_assemble", stuck)

    async def test(sender, receiver, _):
        started = asyncio.get_running_loop().time()
        with pytest.raises(FedSendError, match="no progress"):
            await sender.send("bob", "1:0", "f@alice#1", ready(np.zeros(2**24, dtype=np.uint8)))
        assert asyncio.get_running_loop().time() - started < 10
        # bob, who waits for the value, is told it will not come.
        with pytest.raises(FedRemoteError, match="FedSendError raised at party 'alice'"):
            await asyncio.wait_for(receiver.get("alice", "1:0", "f@alice#1"), 3)

    with_bob(test, timeout_in_ms=1000, chunk_size_in_bytes=64 * 1024)


async def raw_push_whole(address, message):
    """A hand-made one-message push; returns the answer or the receiver's ``Refusal``."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            return await channel.unary_unary(grpc_link.PUSH_WHOLE_METHOD)(message, timeout=5)
        except grpc.aio.AioRpcError as exc:
            return Refusal((exc.code(), exc.details()))


ERROR = wire.encode_error("alice", "ValueError", None)


def whole(head, payload=b"abc"):
    return len(head).to_bytes(4, "little") + head + payload


@pytest.mark.parametrize("message, code, words", [
    (b"", grpc.StatusCode.INVALID_ARGUMENT, "shorter than its length field"),
    (b"\xff\xff\xff\x00garbage", grpc.StatusCode.INVALID_ARGUMENT, "shorter than its header length"),
    (whole(b"garbage"), grpc.StatusCode.INVALID_ARGUMENT, "bad magic"),
    (whole(header(job="other")), grpc.StatusCode.NOT_FOUND, "unknown job"),
    (whole(header(src="mallory")), grpc.StatusCode.PERMISSION_DENIED, "unknown source party"),
    (whole(header(dst="carol")), grpc.StatusCode.INVALID_ARGUMENT, "addressed to another party"),
    (whole(header(segments=(1 << 24,))), grpc.StatusCode.RESOURCE_EXHAUSTED, "messages_max_size_in_bytes"),
    (whole(header(), b"ab"), grpc.StatusCode.INVALID_ARGUMENT, "payload of 2 bytes, the header declares 3"),
    (whole(header(), b"abcd"), grpc.StatusCode.INVALID_ARGUMENT, "payload of 4 bytes, the header declares 3"),
    (whole(header(), b"abc"), grpc.StatusCode.INVALID_ARGUMENT, "value refused: malformed value"),
    (whole(header(codec="error", segments=(len(ERROR), 3)), ERROR + bytes(64 - len(ERROR)) + b"abc"),
     grpc.StatusCode.INVALID_ARGUMENT, "malformed error frame: one segment expected"),
    (whole(header(codec="error", segments=(7,)), b'{"a": 1'), grpc.StatusCode.INVALID_ARGUMENT,
     "malformed error frame: not a JSON object of the expected form"),
])
def test_bad_one_message_pushes_are_refused(message, code, words):
    async def test(sender, receiver, address):
        refusal = await raw_push_whole(address, message)
        assert refusal == code and words in refusal[1], refusal
        await sender.send("bob", "2:0", "g@alice#2", ready("still fine"))
        assert await receiver.get("alice", "2:0", "g@alice#2") == "still fine"
        assert await raw_push_whole(address, whole(header(object_id="2:0", fingerprint="g@alice#2"))) == b"duplicate"

    with_bob(test, messages_max_size_in_bytes=1 << 20)


def tls_configs(tmp_path, parties=("alice", "bob", "carol")):
    """Configs for each party with its own certificate from one CA, all on fresh loopback ports."""
    from fed._security.certs import make_certs

    files = make_certs(list(parties), tmp_path)
    ports = free_ports(len(parties))
    addrs = {p: f"127.0.0.1:{port}" for p, port in zip(parties, ports)}
    return {p: build_config(party=p, addresses=addrs, job_name="j", tls_config=files[p],
                            config={"cross_silo_comm": {"timeout_in_ms": 2000}}) for p in parties}


def test_a_push_is_taken_only_from_the_party_its_certificate_names(tmp_path):
    cfg = tls_configs(tmp_path)
    impostor = dataclasses.replace(cfg["alice"], tls=cfg["carol"].tls)  # claims alice, holds carol's cert

    async def main():
        async with serving(cfg["bob"], cfg["alice"], impostor) as (receiver, (honest, fake)):
            fake._link._checker = None  # an impostor runs its own code: it skips the check of bob's proof
            with pytest.raises(FedSendError, match="PERMISSION_DENIED: the client certificate does not name "
                                                   "the claimed source party 'alice'"):
                await fake.send("bob", "1:0", "f@alice#1", ready("forged"))
            await honest.send("bob", "1:0", "f@alice#1", ready("real"))
            assert await receiver.get("alice", "1:0", "f@alice#1") == "real"

    asyncio.run(main())


def test_a_sender_talks_only_to_a_server_whose_certificate_names_the_destination(tmp_path):
    cfg = tls_configs(tmp_path)
    # carol listens on bob's address with carol's certificate (same CA): alice must not talk to it.
    fake_bob = dataclasses.replace(cfg["carol"], listen_address=cfg["bob"].addresses["bob"])

    async def main():
        async with serving(fake_bob, cfg["alice"]) as (receiver, (sender,)):
            with pytest.raises(FedSendError, match="presents a TLS certificate for .*'carol'.*, not 'bob'") as info:
                await sender.send("bob", "1:0", "f@alice#1", ready("secret"))
            assert "reached party" not in str(info.value)  # stopped by TLS, not by the header check
            assert "party_cert_names" in str(info.value)  # and it says how to fix it
            assert receiver.counts() == {"values": 0, "duplicates": 0, "buffered_bytes": 0}

    asyncio.run(main())


async def say_bye(address, src="alice", kind="finished", job="j", error_type="", cause=None):
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            return await channel.stream_unary(grpc_link.BYE_METHOD)(
                iter([wire.encode_bye(job, src, kind, error_type, cause)]), timeout=5)
        except grpc.aio.AioRpcError as exc:
            return exc.code()


def test_a_peer_that_finished_without_sending_a_value_is_divergence_at_once():
    async def test(sender, receiver, address):
        await sender.send("bob", "1:0", "f@alice#1", ready("sent before goodbye"))
        waiting = asyncio.ensure_future(receiver.get("alice", "2:0", "g@alice#2"))
        await asyncio.sleep(0.1)
        assert await say_bye(address) == b"ok"
        with pytest.raises(FedDivergenceError, match=r"'alice' finished its program without sending value 2:0 "
                                                     r"\(g@alice#2\) that party 'bob' waits for"):
            await asyncio.wait_for(waiting, 2)
        with pytest.raises(FedDivergenceError, match="value 3:0"):  # later waits too, at once
            await asyncio.wait_for(receiver.get("alice", "3:0", "h@alice#3"), 2)
        assert await receiver.get("alice", "1:0", "f@alice#1") == "sent before goodbye"

    with_bob(test)


def test_an_aborted_peer_is_a_remote_error_naming_it():
    async def test(sender, receiver, address):
        waiting = asyncio.ensure_future(receiver.get("alice", "2:0", "g@alice#2"))
        await asyncio.sleep(0.1)
        assert await say_bye(address, kind="aborted", error_type="KeyboardInterrupt") == b"ok"
        with pytest.raises(FedRemoteError, match="KeyboardInterrupt raised at party 'alice'.*value 2:0") as info:
            await asyncio.wait_for(waiting, 2)
        assert info.value.src_party == "alice" and info.value.error_type == "KeyboardInterrupt"

    with_bob(test)


@pytest.mark.parametrize("fields, code", [
    ({"job": "other"}, grpc.StatusCode.NOT_FOUND),
    ({"src": "mallory"}, grpc.StatusCode.PERMISSION_DENIED),
    ({"src": "bob"}, grpc.StatusCode.PERMISSION_DENIED),
    ({"kind": "vanished"}, grpc.StatusCode.INVALID_ARGUMENT),
])
def test_a_goodbye_from_no_peer_of_this_job_is_refused(fields, code):
    async def test(sender, receiver, address):
        assert await say_bye(address, **fields) == code
        await sender.send("bob", "1:0", "f@alice#1", ready(1))
        assert await receiver.get("alice", "1:0", "f@alice#1") == 1

    with_bob(test)


def test_a_peer_that_stops_answering_is_lost_within_the_liveness_timeout():
    async def test(sender, receiver, address):  # nothing serves alice's address
        receiver.peers_started(["alice"])  # as after the barrier of fed.init
        started = asyncio.get_running_loop().time()
        with pytest.raises(FedPeerLostError, match=r"party 'alice' is lost \(no answer from 127.0.0.1:\d+ for 1 s\); "
                                                   r"value 2:0 \(g@alice#2\) that party 'bob' waits for will not come"):
            await receiver.get("alice", "2:0", "g@alice#2")
        assert asyncio.get_running_loop().time() - started < 4
        with pytest.raises(FedPeerLostError):  # and stays lost
            await asyncio.wait_for(receiver.get("alice", "3:0", "g@alice#3"), 1)

    with_bob(test, liveness_timeout_in_ms=1000)


def test_a_peer_never_seen_may_still_be_starting_and_gets_timeout_in_ms():
    async def test(sender, receiver, address):
        started = asyncio.get_running_loop().time()
        with pytest.raises(FedPeerLostError, match="for 3 s"):
            await receiver.get("alice", "2:0", "g@alice#2")
        assert asyncio.get_running_loop().time() - started > 2.5

    with_bob(test, liveness_timeout_in_ms=500, timeout_in_ms=3000)


def test_a_slow_peer_that_answers_pings_is_waited_for():
    alice, bob = configs(liveness_timeout_in_ms=500)

    async def main():
        async with serving(alice) as _, serving(bob, alice) as (receiver, (sender,)):
            asyncio.get_running_loop().call_later(2.5, asyncio.ensure_future,
                                                  sender.send("bob", "2:0", "g@alice#2", ready("late")))
            assert await receiver.get("alice", "2:0", "g@alice#2") == "late"  # 5 liveness timeouts later

    asyncio.run(main())


def test_max_wait_in_ms_bounds_a_wait():
    async def test(sender, receiver, address):
        with pytest.raises(FedError, match="waited max_wait_in_ms=300 for value 2:0"):
            await receiver.get("alice", "2:0", "g@alice#2")
        await sender.send("bob", "2:0", "g@alice#2", ready("too late"))  # dropped, not held
        assert receiver.counts()["buffered_bytes"] == 0

    with_bob(test, max_wait_in_ms=300, liveness_timeout_in_ms=60_000)


def test_two_programs_that_diverged_and_wait_on_each_other_are_told_the_first_differing_call():
    from fed._transport.call_log import CallLog

    alice, bob = configs(liveness_timeout_in_ms=1000)

    def shared(receiver, *fingerprints):
        log = CallLog()
        for fp in fingerprints:
            log.add(fp)
        receiver.record_calls(*log.take_new())

    async def main():
        async with serving(alice) as (at_alice, _), serving(bob) as (at_bob, _):
            at_alice.peers_started(["bob"])
            at_bob.peers_started(["alice"])
            shared(at_alice, "f@alice#1", "g@bob#2", "h@alice#3")
            shared(at_bob, "f@alice#1", "g@alice#2", "h@alice#3")
            waits = [at_alice.get("bob", "2:0", "g@bob#2"), at_bob.get("alice", "2:0", "g@alice#2")]
            results = await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 5)
        assert all(isinstance(r, FedDivergenceError) for r in results), results
        for result, me in zip(results, ("alice", "bob")):  # whoever finds it first tells the other
            text = str(result)
            assert "diverged at call 2:" in text and f"that party '{me}' waits for" in text, text
            assert "'alice' made g@bob#2" in text and "'bob' made g@alice#2" in text, text

    asyncio.run(main())


def test_a_busy_peer_that_answers_late_is_waited_for_and_a_silent_one_is_lost_after_the_liveness_timeout(
        monkeypatch):
    from faultproxy import FaultProxy

    alice, bob = configs(liveness_timeout_in_ms=1000, timeout_in_ms=60_000)

    from fed._transport.inbox import Inbox

    on_time = Inbox.on_ping

    async def late_ping(self, request, caller):  # alice's Python answers pings only after 2 s
        await asyncio.sleep(2)
        return await on_time(self, request, caller)

    async def main():
        with FaultProxy(alice.addresses["alice"]) as proxy:
            via_proxy = dataclasses.replace(bob, addresses={**bob.addresses, "alice": proxy.address})
            async with serving(alice, alice) as (_, (sender,)), serving(via_proxy) as (receiver, _):
                receiver.peers_started(["alice"])
                # Busy: every ping is answered late, but alice's gRPC core acknowledges the
                # connection's keepalive pings, so she is waited for (4 s: four liveness timeouts).
                monkeypatch.setattr(Inbox, "on_ping", late_ping)
                asyncio.get_running_loop().call_later(4, asyncio.ensure_future,
                                                      sender.send("bob", "1:0", "f@alice#1", ready("slow")))
                assert await receiver.get("alice", "1:0", "f@alice#1") == "slow"
                # Silent: nothing gets through any more, keepalive acknowledgements included
                # (a machine gone without closing its connections). Lost after the liveness
                # timeout, not timeout_in_ms.
                proxy.stall()
                started = asyncio.get_running_loop().time()
                with pytest.raises(FedPeerLostError, match="for 1 s"):
                    await receiver.get("alice", "2:0", "g@alice#2")
                assert asyncio.get_running_loop().time() - started < 4

    asyncio.run(main())


class Slow:
    """A registered type whose from_wire takes three seconds: a peer's values that are slow to decode."""


def test_one_peers_slow_values_do_not_hold_up_another_peers_value():
    import time

    from fed._serialization import registry

    registry.unregister_all()
    registry.register_type(Slow, to_wire=lambda s: 0, from_wire=lambda parts: time.sleep(3.0) or Slow(), name="slow")
    try:
        ports = free_ports(3)
        addrs = {p: f"127.0.0.1:{port}" for p, port in zip(("alice", "bob", "carol"), ports)}
        alice, bob, carol = (build_config(party=p, addresses=addrs, job_name="j", types=registry.snapshot())
                             for p in addrs)
    finally:
        registry.unregister_all()

    async def main():
        async with serving(bob, alice, carol) as (receiver, (from_alice, from_carol)):
            loop = asyncio.get_running_loop()
            slow = [asyncio.ensure_future(from_carol.send("bob", f"{i}:0", f"f@carol#{i}", ready(Slow())))
                    for i in range(4)]  # four slow decodes: as many as bob has threads for two peers
            await asyncio.sleep(0.3)
            started = loop.time()
            await from_alice.send("bob", "1:0", "f@alice#1", ready("quick"))
            took = loop.time() - started
            assert await receiver.get("alice", "1:0", "f@alice#1") == "quick"
            await asyncio.gather(*slow)
            assert took < 1.5, f"alice's value waited {took:.1f} s behind carol's"

    asyncio.run(main())


def test_a_fault_of_the_receiver_reaches_a_grpc_caller_as_internal_without_its_text(monkeypatch):
    from fed._transport.inbox import Inbox

    async def broken(self, request, caller):
        raise KeyError("secret-of-bob")

    monkeypatch.setattr(Inbox, "on_ping", broken)

    async def test(sender, receiver, address):
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await channel.unary_unary(grpc_link.PING_METHOD)(wire.encode_ping("j", "alice"), timeout=5)
        assert failed.value.code() == grpc.StatusCode.INTERNAL
        assert failed.value.details() == "internal error at the receiver; its log says more"

    with_bob(test)
