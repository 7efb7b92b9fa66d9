"""Thousands of generated and mutated pushes at a live receiver; honest pushes must still work after.

The receiver (real gRPC on loopback, no Ray) runs on an event loop in a thread of this process, so
a crash of the receiver would end the test run. The raw client follows the protocol as far as the
receiver lets it (it sends data only once the header is admitted), so every answer is the
receiver's own: a final answer (a mutation can still be a valid push), or a refusal with one of
the statuses fed gives, in fed's own short words — never UNKNOWN (an unhandled exception) or
INTERNAL. The receiver must hold no more than its buffer cap.
"""

from __future__ import annotations

import asyncio
import json
import threading

import grpc
import msgpack
import numpy as np
import pytest
from codec_trees import mutate, trees
from harness import free_ports
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fed._config import build_config
from fed._serialization import codec, records
from fed._transport import grpc_link, wire
from fed._transport.receiver import Receiver
from fed._transport.sender import Sender

CAP = 16 << 20
EXAMPLES = 1500  # per test; five tests: 7500 pushes in all
# What the receiver answers a push it does not take (each for its own reason, see test_receiver).
REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}

json_scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
sizes = st.integers(-5, 64) | st.integers(-2**63, 2**63) | st.sampled_from([0, CAP, CAP + 1, 1 << 40])
names = st.sampled_from(["j", "alice", "bob", "carol", "1:0", "f@alice#1", "fed", "error", ""]) \
    | st.text(max_size=12)


def field(valid, other=json_values):
    """Mostly the valid value of a header field, else any name, else any JSON."""
    return st.one_of(st.just(valid), st.just(valid), names, other)


headers = st.fixed_dictionaries({
    "job": field("j"), "src": field("alice"), "dst": field("bob"), "object_id": names,
    "fingerprint": field("f@alice#1"), "codec": field("fed"),
    "segments": st.one_of(st.lists(sizes, min_size=0, max_size=5), json_values),
}, optional={"extra": json_values})


@st.composite
def header_frames(draw):
    body = draw(headers)
    if draw(st.booleans()):
        body.pop(draw(st.sampled_from(sorted(body))))
    version = draw(st.sampled_from([wire.VERSION, wire.VERSION, 0, 2, 255]))
    magic = draw(st.sampled_from([wire.MAGIC, wire.MAGIC, wire.MAGIC, b"RFEX", b""]))
    return magic + bytes([version]) + json.dumps(body).encode()


values = st.recursive(st.none() | st.integers() | st.text(max_size=30) | st.binary(max_size=200)
                      | st.floats(allow_nan=False),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                  max_size=4), max_leaves=8)


@st.composite
def valid_pushes(draw):
    """A well-formed push of a random value (or an array), as (header frame, payload)."""
    value = draw(values | st.integers(0, 9000).map(lambda n: np.arange(n, dtype=np.uint8)))
    segments, copied = codec.encode(value)
    head = wire.Header(job="j", src="alice", dst="bob", object_id=draw(names), fingerprint="f@alice#1",
                       codec="fed", segments=tuple(s.nbytes for s in segments), copied=copied)
    payload = b"".join(wire.iter_payload(segments, 1 << 30))
    return wire.encode_header(head), payload


@st.composite
def codec_pushes(draw):
    """A push whose header is valid and whose records are a mutated codec document (structure-aware)."""
    value = draw(values)
    encoded = codec.encode(value)
    tree = msgpack.unpackb(bytes(encoded.segments[0][records.HEAD:]), raw=False, strict_map_key=False,
                           ext_hook=msgpack.ExtType)
    out = bytearray()
    records.add(out, records.VALUE, msgpack.packb(mutate(tree, draw) if draw(st.booleans()) else draw(trees),
                                                  use_bin_type=True))
    segments = [memoryview(out), *encoded.segments[1:]]
    head = wire.Header(job="j", src="alice", dst="bob", object_id=draw(names), fingerprint="f@alice#1",
                       codec="fed", segments=tuple(s.nbytes for s in segments), copied=encoded.copied)
    return wire.encode_header(head), b"".join(wire.iter_payload(segments, 1 << 30))


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, cut, or grown."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "grow", "splice"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "grow":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "splice":
            data[at:] = draw(st.binary(max_size=64))
    return bytes(data)


@st.composite
def streams(draw):
    """The frames of one streamed push: generated, mutated from a valid one, or garbage."""
    kind = draw(st.sampled_from(["generated", "mutated", "garbage"]))
    if kind == "garbage":
        return draw(st.lists(st.binary(max_size=300), max_size=5))
    head, payload = draw(valid_pushes())
    if kind == "generated":
        head = draw(header_frames())
    else:
        head, payload = draw(mutated(head)), draw(mutated(payload))
    cut = draw(st.integers(1, 5))
    step = max(1, len(payload) // cut)
    return [head] + [payload[i:i + step] for i in range(0, len(payload), step)]


@st.composite
def wholes(draw):
    """One one-message push: generated, mutated from a valid one, or garbage."""
    kind = draw(st.sampled_from(["generated", "mutated", "garbage"]))
    if kind == "garbage":
        return draw(st.binary(max_size=400))
    head, payload = draw(valid_pushes())
    if kind == "generated":
        head = draw(header_frames())
    message = wire.encode_whole(head, [memoryview(payload)])
    return draw(mutated(message)) if kind == "mutated" else message


class LiveReceiver:
    """bob's receiver on an event loop thread, alice's sender, and a raw channel to bob."""

    def __init__(self) -> None:
        ports = free_ports(2)
        addrs = {"alice": f"127.0.0.1:{ports[0]}", "bob": f"127.0.0.1:{ports[1]}"}
        config = {"cross_silo_comm": {"timeout_in_ms": 5000, "chunk_size_in_bytes": 4096,
                                      "max_buffered_bytes": CAP}}
        self.alice, self.bob = (build_config(party=p, addresses=addrs, config=config, job_name="j")
                                for p in ("alice", "bob"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.receiver, self.sender = self.run(self._start())
        self.answers: dict[str, int] = {}

    async def _start(self):
        receiver = Receiver(self.bob)
        await receiver.start()
        self.channel = grpc.aio.insecure_channel(self.bob.listen_address)
        return receiver, Sender(self.alice)

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def push(self, frames: list[bytes]) -> None:
        self._count(self.run(self._stream(frames)))

    def push_whole(self, message: bytes) -> None:
        self._count(self.run(self._whole(message)))

    def _count(self, answer) -> None:
        if isinstance(answer, tuple):  # a refusal: (status, details)
            code, details = answer
            assert code in REFUSALS, (code, details)
            assert details and len(details) <= 300 and "\n" not in details and details.isprintable(), details
            key = code.name
        else:
            key = answer.decode()
            assert key in ("ok", "duplicate"), answer
        self.answers[key] = self.answers.get(key, 0) + 1
        assert self.receiver.counts()["buffered_bytes"] <= CAP

    async def _stream(self, frames):
        """The frames as a sender would push them: data only after the receiver admits the header."""
        call = self.channel.stream_stream(grpc_link.PUSH_METHOD)(timeout=10)
        answers = []
        try:
            for i, frame in enumerate(frames):
                await call.write(frame)
                if i == 0:  # the receiver's first answer: an ack of 0 (admitted), "duplicate", or a refusal
                    answers.append(await call.read())
                    if answers[-1] is grpc.aio.EOF:
                        return await self._status(call)
                    if answers[-1][:1] == wire.LANE_REFUSED:  # refused: its frame, then the status
                        return await self._status(call)
                    if wire.decode_ack(answers[-1]) is None:
                        assert answers[-1] == b"duplicate", answers
                        return answers[-1]
            await call.done_writing()
            while (message := await call.read()) is not grpc.aio.EOF:
                answers.append(message)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED, "the receiver hung on a push"
            return exc.code(), exc.details()
        except asyncio.InvalidStateError:  # written after the receiver ended the call
            return await self._status(call)
        status = await self._status(call)
        if isinstance(status, tuple):
            return status
        assert answers and all(wire.decode_ack(m) is not None for m in answers[:-1]), answers
        return answers[-1]

    @staticmethod
    async def _status(call):
        code = await call.code()
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED, "the receiver hung on a push"
        return (code, await call.details()) if code != grpc.StatusCode.OK else None

    async def _whole(self, message):
        try:
            return await self.channel.unary_unary(grpc_link.PUSH_WHOLE_METHOD)(message, timeout=10)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED, "the receiver hung on a push"
            return exc.code(), exc.details()

    def honest_transfer(self, object_id: str, value) -> None:
        async def go():
            ready = asyncio.get_running_loop().create_future()
            ready.set_result(value)
            await self.sender.send("bob", object_id, "f@alice#honest", [ready])
            return await self.receiver.get("alice", object_id, "f@alice#honest")
        got = self.run(go())
        np.testing.assert_array_equal(got, value)

    def close(self) -> None:
        async def stop():
            await self.channel.close()
            await self.sender.stop()
            await self.receiver.stop(0)
        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def live():
    receiver = LiveReceiver()
    yield receiver
    # After everything below, honest pushes still go through: one streamed, one whole.
    receiver.honest_transfer("honest:0", np.arange(200_000, dtype=np.int32))
    receiver.honest_transfer("honest:1", np.arange(10, dtype=np.int32))
    print("answers:", receiver.answers)
    assert sum(receiver.answers.values()) >= 5 * EXAMPLES
    # Valid pushes (taken, or duplicates of keys taken before) and refusals both were exercised.
    assert receiver.answers.get("ok", 0) + receiver.answers.get("duplicate", 0) > 500
    assert receiver.answers.get("INVALID_ARGUMENT", 0) > 1000
    receiver.close()


fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@fuzz
@given(frames=streams())
def test_streamed_pushes(live, frames):
    live.push(frames)


@fuzz
@given(message=wholes())
def test_one_message_pushes(live, message):
    live.push_whole(message)


@fuzz
@given(push=codec_pushes())
def test_pushes_of_mutated_codec_documents(live, push):
    head, payload = push
    live.push([head] + [payload[i:i + 4096] for i in range(0, len(payload), 4096)])


@fuzz
@given(frames=st.lists(header_frames(), min_size=1, max_size=2).flatmap(
    lambda heads: st.lists(st.binary(max_size=200), max_size=3).map(lambda data: heads + data)))
def test_generated_headers(live, frames):
    live.push(frames)


@fuzz
@given(frames=st.lists(st.binary(max_size=100), max_size=6))
def test_garbage_frames(live, frames):
    live.push(frames)


def test_honest_pushes_work_between_fuzzing(live):
    live.honest_transfer("between:0", np.ones(100_000, dtype=np.float64))
