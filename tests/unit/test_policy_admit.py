"""What the receiver decides when a push's header arrives (``Inbox._admit``), over the in-memory
link: the sender has shown it is alive, a duplicate is dropped and counted for its sender, a
second push of a value being received is told to try again, and a push without room is told
whether room may come."""

from __future__ import annotations

import asyncio
import logging

import pytest
from memory_parties import parties, ready

from fed._transport import link, wire
from fed._transport.admission import holding_cost


def run(test, **kw):
    async def main():
        async with parties("alice", "bob", **kw) as made:
            await asyncio.wait_for(test(made["alice"], made["bob"]), 30)
    asyncio.run(main())


def header(object_id: str, size: int) -> wire.Header:
    return wire.Header("j", "alice", "bob", object_id, f"f@alice#{object_id}", "fed", (size,))


async def open_push(alice, head: wire.Header) -> link.OutStream:
    """A push stream from alice to bob with only its header written."""
    stream = await alice.sender._link.connect("bob").stream(link.PUSH, 1)
    await stream.write(wire.encode_header(head))
    return stream


async def refusal(stream: link.OutStream) -> link.LinkError:
    """A refused push's answers: its refusal frame, then the same refusal as the call's status."""
    _, (code, text, no_room) = wire.decode_lane_answer(await stream.read())
    with pytest.raises(link.LinkError) as status:
        await stream.read()
    assert (status.value.code, status.value.details, status.value.no_room) == (code, text, no_room)
    return status.value


def test_a_push_shows_its_sender_is_alive():
    async def test(alice, bob):
        assert bob.receiver.heard_from(["alice"]) == []
        await alice.sender.send("bob", "1:0", "f@alice#1", ready(1))
        assert bob.receiver.heard_from(["alice"]) == ["alice"]

    run(test)


def test_a_duplicate_is_dropped_counted_for_its_sender_and_logged_by_its_value(caplog):
    async def test(alice, bob):
        with caplog.at_level(logging.INFO, logger="fed"):
            for _ in range(2):
                await alice.sender.send("bob", "1:0", "f@alice#1", ready(1))
        assert bob.receiver.stats()["peers"]["alice"]["duplicates"] == 1
        assert "duplicate push of 1:0 (f@alice#1) from alice dropped" in caplog.messages

    run(test)


def test_a_second_push_of_a_value_being_received_is_told_to_try_again():
    async def test(alice, bob):
        first = await open_push(alice, header("1:0", 50_000))
        assert wire.decode_ack(await first.read()) == 0  # admitted; its data has not come yet
        refused = await refusal(await open_push(alice, header("1:0", 50_000)))
        assert refused.code == "UNAVAILABLE" and not refused.no_room
        assert refused.details == "a push of this value is already being received"
        first.cancel()

    run(test)


def cost(head: wire.Header) -> int:
    return holding_cost(head, len(wire.encode_header(head)))


FIRST, SECOND, HUGE = header("1:0", 1000), header("2:0", 1000), header("3:0", 3000)
CAP = cost(FIRST) + cost(SECOND) - 1  # room for one of them, not for both


def test_a_push_without_room_now_waits_for_room_and_one_over_the_cap_is_refused_for_good():
    assert cost(HUGE) > CAP

    async def test(alice, bob):
        first = await open_push(alice, FIRST)
        assert wire.decode_ack(await first.read()) == 0  # admitted: it holds its room
        later = await refusal(await open_push(alice, SECOND))
        assert later.code == "UNAVAILABLE" and later.no_room
        assert f"already holds {cost(FIRST)} bytes" in later.details
        assert "Try again after it consumes some" in later.details
        too_large = await refusal(await open_push(alice, HUGE))
        assert too_large.code == "RESOURCE_EXHAUSTED" and not too_large.no_room
        assert f"needs {cost(HUGE)} bytes" in too_large.details
        assert f"exceeds its max_buffered_bytes={CAP}" in too_large.details
        first.cancel()

    run(test, max_buffered_bytes=CAP)
