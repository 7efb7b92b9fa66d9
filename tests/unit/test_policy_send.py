"""What one ``Sender.send`` does with each kind of value, over the in-memory link: a value it
carries (and how it counts it), a value its codec cannot carry, a value over the size limit, a
registered type, a value that crosses by value. In every failure the peer is told, with fed's
words only unless ``expose_error_trace``."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from memory_parties import parties, ready

from fed._exceptions import FedRemoteError, FedSendError
from fed._serialization import codec
from fed._serialization.registry import NONE, Entry, Types
from fed._transport import wire


def run(test, **kw):
    async def main():
        async with parties("alice", "bob", **kw) as made:
            await asyncio.wait_for(test(made["alice"], made["bob"]), 30)
    asyncio.run(main())


async def told(bob, object_id: str = "1:0", fingerprint: str = "f@alice#1") -> str:
    """What bob's program is told instead of the value (within a second: alice told him at once)."""
    with pytest.raises(FedRemoteError) as error:
        await asyncio.wait_for(bob.receiver.get("alice", object_id, fingerprint), 1)
    return str(error.value)


def sent_row(alice) -> dict:
    return alice.sender.meter.snapshot()["bob"]


def payload_size(value) -> int:
    """The bytes a push of ``value`` carries (what the size limit is checked against)."""
    segments, _ = codec.encode(value, NONE)
    return wire.Header("j", "alice", "bob", "1:0", "f", codec.NAME, tuple(s.nbytes for s in segments)).total_size


def test_a_sent_value_is_counted_once_with_its_payload_bytes_and_the_time_it_took():
    async def test(alice, bob):
        value = np.arange(10_000, dtype=np.uint8)
        sent = await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))
        assert sent == (payload_size(value), "fed") and not sent.error
        row = sent_row(alice)
        assert (row["values"], row["bytes"], row["refusals"], row["failures"]) == (1, sent.nbytes, 0, 0)
        assert 0 < row["push_seconds_max"] < 5 and row["mb_per_s"] > 0
        assert bob.receiver.stats()["peers"]["alice"]["bytes"] == sent.nbytes
        np.testing.assert_array_equal(await bob.receiver.get("alice", "1:0", "f@alice#1"), value)

    run(test)


@pytest.mark.parametrize("expose", [False, True])
def test_a_value_the_codec_cannot_carry_fails_and_the_peer_is_told_without_the_detail(expose):
    async def test(alice, bob):
        with pytest.raises(FedSendError, match=r"value 1:0 \(f@alice#1\) cannot be sent to 'bob': fed's codec "
                                               r"does not carry _thread\.lock .*TypeError: cannot pickle"):
            await alice.sender.send("bob", "1:0", "f@alice#1", ready(threading.Lock()))
        text = await told(bob)
        assert "cannot be sent to 'bob': fed's codec does not carry _thread.lock" in text
        # what pickling said may come from the program's own code: the peer sees it only if asked to
        assert ("cannot pickle '_thread.lock' object" in text) is expose
        row = sent_row(alice)
        assert (row["values"], row["refusals"], row["failures"]) == (0, 1, 1)

    run(test, expose_error_trace=expose)


@pytest.mark.parametrize("over", [0, 1])
def test_the_size_limit_lets_a_value_of_exactly_its_size_through_and_not_one_byte_more(over):
    value = np.zeros(5000, np.uint8)
    limit = payload_size(value) - over

    async def test(alice, bob):
        if not over:
            assert (await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))).nbytes == limit
            np.testing.assert_array_equal(await bob.receiver.get("alice", "1:0", "f@alice#1"), value)
            return
        with pytest.raises(FedSendError, match=rf"is {limit + 1} bytes, over messages_max_size_in_bytes={limit}; "
                                               r"it was not sent to 'bob'"):
            await alice.sender.send("bob", "1:0", "f@alice#1", ready(value))
        assert f"over messages_max_size_in_bytes={limit}" in await told(bob)
        row = sent_row(alice)
        assert (row["values"], row["bytes"], row["refusals"], row["failures"]) == (0, 0, 1, 1)

    run(test, messages_max_size_in_bytes=limit)


def test_a_push_that_fails_is_counted_as_one_failure_of_its_peer():
    async def test(alice, bob):
        await bob.receiver.stop(0)  # bob is gone: alice's push finds no one
        with pytest.raises(FedSendError, match="could not push 1:0"):
            await alice.sender.send("bob", "1:0", "f@alice#1", ready(np.zeros(100, np.uint8)))
        row = sent_row(alice)
        assert (row["values"], row["refusals"], row["failures"]) == (0, 0, 1)

    run(test, timeout_in_ms=300)


class Weights:
    def __init__(self, layers: list) -> None:
        self.layers = layers


def test_a_registered_type_crosses_through_its_pair_of_functions():
    entry = Entry(Weights, "test.Weights", lambda w: w.layers, Weights)
    types = Types({Weights: entry}, {entry.name: entry})

    async def test(alice, bob):
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(Weights([1, 2])))
        got = await bob.receiver.get("alice", "1:0", "f@alice#1")
        assert type(got) is Weights and got.layers == [1, 2]

    run(test, types=types)


def test_with_allow_unsafe_deserialization_a_class_made_in_a_function_crosses_by_value():
    class Local:
        x = 3

    async def test(alice, bob):
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(Local()))
        assert (await bob.receiver.get("alice", "1:0", "f@alice#1")).x == 3

    run(test, allow_unsafe_deserialization=True)
