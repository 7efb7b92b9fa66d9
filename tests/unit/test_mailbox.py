"""The mailbox's count of what peers make this party hold: the cap at its edge, one waited-for value
beyond it at a time, room given back exactly once, and values handed out once."""

from __future__ import annotations

import asyncio

import pytest

from fed._exceptions import FedError
from fed._transport.mailbox import Arrived, Mailbox, NoRoom
from fed._transport.metrics import Meter

CAP = 1000
A, B, C = ("alice", "a"), ("alice", "b"), ("alice", "c")


def box(max_wait=None) -> Mailbox:
    return Mailbox("bob", CAP, max_wait, Meter("job", "bob", "received"))


def run(coro):
    return asyncio.run(coro)


def test_pushes_are_held_up_to_exactly_the_cap():
    m = box()
    m.reserve(A, 600)
    m.reserve(B, 400)

    assert (m.held_bytes, m.held_values, m.peak_bytes) == (1000, 2, 1000)
    with pytest.raises(NoRoom) as info:
        m.reserve(C, 1)
    assert info.value.now and "already holds 1000 bytes" in str(info.value)


def test_a_value_larger_than_the_cap_never_fits():
    m = box()
    m.reserve(A, CAP)
    m.release(A)

    with pytest.raises(NoRoom) as info:
        m.reserve(B, CAP + 1)
    assert not info.value.now and f"exceeds its max_buffered_bytes={CAP}" in str(info.value)
    assert m.held_bytes == 0 and m.held_values == 0


def test_release_gives_back_exactly_what_was_held_once():
    m = box()
    m.reserve(A, 700)
    m.release(A)
    m.release(A)  # a second release of the same push frees nothing more
    m.reserve(B, 300)

    assert (m.held_bytes, m.held_values, m.peak_bytes) == (300, 1, 700)
    assert not m.receiving(A) and m.receiving(B)


def test_one_value_the_program_waits_for_gets_in_beyond_the_cap_at_a_time():
    async def go():
        m = box()
        m.reserve(A, CAP)
        waits = [asyncio.ensure_future(m.take(B, "fb")), asyncio.ensure_future(m.take(C, "fc"))]
        await asyncio.sleep(0)
        assert m.waiting == {B: "fb", C: "fc"} and m.waits_for("alice") and not m.waits_for("carol")

        m.reserve(B, 500)  # waited for: in beyond the cap
        with pytest.raises(NoRoom):
            m.reserve(C, 500)  # also waited for, but one is beyond already
        with pytest.raises(NoRoom):
            m.reserve(("alice", "d"), 1)  # not waited for
        m.deliver(B, Arrived("fb", value=1))
        assert (await waits[0]).value == 1  # taken: its room is free, and so is the place beyond the cap
        m.reserve(C, 500)
        m.deliver(C, Arrived("fc", value=2))
        assert (await waits[1]).value == 2
        assert m.held_bytes == CAP and m.waiting == {}
    run(go())


def test_a_failed_push_beyond_the_cap_frees_the_place_beyond_it():
    async def go():
        m = box()
        m.reserve(A, CAP)
        waits = [asyncio.ensure_future(m.take(B, "fb")), asyncio.ensure_future(m.take(C, "fc"))]
        await asyncio.sleep(0)
        m.reserve(B, 10)
        m.release(B)  # the push failed
        m.reserve(C, 10)
        for w in waits:
            w.cancel()
    run(go())


def test_a_value_is_handed_out_once_and_a_second_delivery_changes_nothing():
    async def go():
        m = box()
        m.reserve(A, 100)
        m.deliver(A, Arrived("fa", value="first"))
        m.deliver(A, Arrived("fa", value="second"))
        assert m.has(A) and not m.was_taken(A)

        got = await m.take(A, "fa")

        assert got.value == "first" and m.was_taken(A) and m.has(A)
        assert m.held_bytes == 0 and m.held_values == 0
        assert not m.has(B)
    run(go())


def test_waiting_past_max_wait_is_an_error_and_a_late_value_is_a_duplicate():
    async def go():
        m = box(max_wait=50)
        with pytest.raises(FedError, match="waited max_wait_in_ms=50 for value a"):
            await m.take(A, "fa")
        assert m.has(A) and m.waiting == {}
    run(go())


def test_settle_counts_the_values_asked_for_that_never_came():
    async def go():
        m = box()
        waits = [asyncio.ensure_future(m.take(k, "f")) for k in (A, B)]
        await asyncio.sleep(0)
        m.deliver(A, Arrived("f", value=1))
        assert await m.settle(0.05) == 1
        m.close()
        assert (await waits[0]).value == 1
        with pytest.raises(asyncio.CancelledError):
            await waits[1]
    run(go())


def test_take_soon_is_handed_the_value_inside_the_delivery_and_the_room_freed_then():
    async def main():
        m, got = box(), []
        m.reserve(A, 300)
        m.take_soon(A, "fa", got.append)
        assert m.waiting == {A: "fa"} and got == []
        m.deliver(A, Arrived("fa", value=1))
        assert [g.value for g in got] == [1]  # no turn of the event loop in between
        assert (m.held_bytes, m.waiting, m.was_taken(A), m.has(A)) == (0, {}, True, True)
        m.deliver(B, Arrived("fb", value=2))
        m.take_soon(B, "fb", got.append)  # delivered already: handed out at once
        assert [g.value for g in got] == [1, 2]
    run(main())


def test_take_soon_ends_with_an_error_after_max_wait_or_when_the_mailbox_closes():
    async def main():
        m, got = box(max_wait=100), []
        m.take_soon(A, "fa", got.append)
        m.take_soon(B, "fb", got.append)
        await asyncio.sleep(0.3)
        assert [type(g) for g in got] == [FedError, FedError] and "max_wait_in_ms=100" in str(got[0])
        assert "from party 'alice'" in str(got[0])
        m.deliver(A, Arrived("fa", value=1))  # too late: dropped as a duplicate would be
        assert m.has(A) and len(got) == 2
        m.take_soon(C, "fc", got.append)
        m.close()
        assert isinstance(got[-1], asyncio.CancelledError) and m.waiting == {}
    run(main())


def test_a_take_given_up_leaves_the_value_for_the_next_and_a_failing_taker_spoils_no_delivery(caplog):
    async def main():
        m = box()
        waiter = asyncio.ensure_future(m.take(A, "fa"))
        await asyncio.sleep(0)
        waiter.cancel()
        assert isinstance((await asyncio.gather(waiter, return_exceptions=True))[0], asyncio.CancelledError)
        assert m.waiting == {}
        m.deliver(A, Arrived("fa", value=1))
        assert (await m.take(A, "fa")).value == 1

        def broken(arrived):
            raise KeyError("bug")
        m.take_soon(B, "fb", broken)
        m.deliver(B, Arrived("fb", value=2))  # the taker's bug is logged, not raised into the push
        assert m.was_taken(B) and "handing out a received value failed" in caplog.text
    run(main())


def test_a_take_given_up_under_max_wait_leaves_no_timer_to_end_the_next_take_of_the_key():
    async def main():
        m = box(max_wait=500)
        first = asyncio.ensure_future(m.take(A, "fa"))  # its deadline: 0.5 s
        await asyncio.sleep(0.1)
        first.cancel()
        assert isinstance((await asyncio.gather(first, return_exceptions=True))[0], asyncio.CancelledError)
        second = asyncio.ensure_future(m.take(A, "fa"))  # its deadline: 0.6 s
        await asyncio.sleep(0.45)  # past the first take's deadline, within the second's
        m.deliver(A, Arrived("fa", value=7))
        assert (await second).value == 7
    run(main())
