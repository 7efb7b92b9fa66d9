"""Liveness, goodbyes, divergence and values that will not come, over the in-memory link: what a
waiting party concludes from its pings to the peer it waits on. Each failure is set on the link."""

from __future__ import annotations

import asyncio

import pytest
from memory_parties import elapsed, net, now, parties, ready

from fed._exceptions import FedDivergenceError, FedError, FedPeerLostError, FedRemoteError
from fed._transport import link, wire
from fed._transport.call_log import KEEP, CallLog
from fed._transport.link import LinkError


def bounded(wait, seconds: float = 10.0):
    """A wait that fails the test instead of hanging it (every case here ends within seconds)."""
    return asyncio.wait_for(wait, seconds)


def run(test, **comm):
    async def main():
        async with parties("alice", "bob", **comm) as p:
            p["bob"].receiver.peers_started(["alice"])  # as the barrier at fed.init does
            await test(p["alice"], p["bob"])
    asyncio.run(main())


async def push_later(alice, delay: float, object_id="1:0", fingerprint="f@alice#1", value="late"):
    await asyncio.sleep(delay)
    await alice.sender.send("bob", object_id, fingerprint, ready(value))


def test_a_peer_that_answers_pings_is_waited_for_past_timeout_in_ms():
    async def test(alice, bob):
        asyncio.ensure_future(push_later(alice, 1.5))  # 2.5 times timeout_in_ms
        assert await bounded(bob.receiver.get("alice", "1:0", "f@alice#1")) == "late"
        assert net().calls[(alice.address, "Ping")] >= 10

    run(test, timeout_in_ms=600, liveness_timeout_in_ms=300)


def test_a_busy_peer_whose_pings_are_answered_late_is_waited_for_until_timeout_in_ms():
    async def test(alice, bob):
        net().fault(alice.address).late = 0.3  # longer than a ping's patience; the connection is up
        asyncio.ensure_future(push_later(alice, 1.2))  # 2.4 liveness timeouts
        assert await bounded(bob.receiver.get("alice", "1:0", "f@alice#1")) == "late"

    run(test, timeout_in_ms=3000, liveness_timeout_in_ms=500)


def test_a_peer_whose_connections_are_refused_is_lost_after_the_liveness_timeout():
    async def test(alice, bob):
        net().fault(alice.address).refuse = True  # its process died
        started = now()
        with pytest.raises(FedPeerLostError,
                           match=r"party 'alice' is lost \(no answer from mem-alice:1 for 0.5 s\)"):
            await bounded(bob.receiver.get("alice", "1:0", "f@alice#1"))
        assert 0.45 < elapsed(started) < 1.0

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)


def test_failures_count_only_while_unbroken_so_a_flapping_peer_is_not_lost():
    async def test(alice, bob):
        fault = net().fault(alice.address)
        waiting = asyncio.ensure_future(bob.receiver.get("alice", "1:0", "f@alice#1"))
        for _ in range(3):  # 2.1 s refused in all, never 1 s in a row
            fault.refuse = True
            await asyncio.sleep(0.7)
            fault.refuse = False
            await asyncio.sleep(0.4)
            assert not waiting.done()
        await push_later(alice, 0)
        assert await bounded(waiting) == "late"

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=1000)


def test_a_peer_never_seen_gets_timeout_in_ms_not_the_liveness_timeout():
    async def main():
        async with parties("alice", "bob", serving=("bob",), timeout_in_ms=1200, liveness_timeout_in_ms=300) as p:
            started = now()
            with pytest.raises(FedPeerLostError, match="for 1.2 s"):
                await bounded(p["bob"].receiver.get("alice", "1:0", "f@alice#1"))  # alice may still be starting
            assert 1.1 < elapsed(started) < 2.0
    asyncio.run(main())


def test_a_peer_seen_late_counts_failures_only_from_its_last_sign_of_life():
    async def test(alice, bob):
        fault = net().fault(alice.address)
        fault.refuse = True
        waiting = asyncio.ensure_future(bob.receiver.get("alice", "1:0", "f@alice#1"))
        await asyncio.sleep(0.35)
        await alice.sender.ping("bob")  # alice reaches bob: she is alive, whatever bob's pings met
        await asyncio.sleep(0.35)  # 0.7 s of refused pings, 0.35 s since her ping
        assert not waiting.done()
        fault.refuse = False
        await push_later(alice, 0)
        assert await bounded(waiting) == "late"

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)


@pytest.mark.parametrize("kind, error, words", [
    ("finished", FedDivergenceError, "party 'alice' finished its program without sending value 1:0"),
    ("aborted", FedRemoteError, "KeyboardInterrupt raised at party 'alice': its program stopped before sending"),
])
def test_a_goodbye_ends_the_waits_on_that_peer_at_once(kind, error, words):
    async def test(alice, bob):
        waiting = asyncio.ensure_future(bob.receiver.get("alice", "1:0", "f@alice#1"))
        await asyncio.sleep(0.1)
        assert await alice.sender.bye("bob", kind, "KeyboardInterrupt" if kind == "aborted" else "")
        with pytest.raises(error, match=words):
            await asyncio.wait_for(waiting, 0.5)

    run(test, timeout_in_ms=10_000)


def share(receiver, fingerprints, started=()):
    """What a driver hands its receiver: its program's calls so far (and the pushes it started)."""
    log = CallLog()
    for fingerprint in fingerprints:
        log.add(fingerprint)
    receiver.record_calls(*log.take_new(), started=list(started))


def test_programs_that_made_different_calls_are_told_where_at_both_parties():
    async def test(alice, bob):
        share(alice.receiver, ["f@alice#1", "g@alice#2", "h@bob#3"])
        share(bob.receiver, ["f@alice#1", "k@alice#2", "h@bob#3"])
        started = now()
        with pytest.raises(FedDivergenceError,
                           match=r"diverged at call 2: 'bob' made k@alice#2, 'alice' made g@alice#2"):
            await bounded(bob.receiver.get("alice", "2:0", "k@alice#2"))
        assert elapsed(started) < 1
        await asyncio.sleep(0.1)
        told = alice.receiver._peers.gone("bob")  # told by bob's goodbye, with where
        assert told.kind == "diverged" and "diverged at call 2: 'bob' made k@alice#2" in told.cause

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)


def test_a_divergence_at_the_first_call_is_found_and_named():
    async def test(alice, bob):
        share(alice.receiver, ["f@alice#1"])  # one call each: the shortest comparison there is
        share(bob.receiver, ["k@alice#1"])
        with pytest.raises(FedDivergenceError,
                           match=r"diverged at call 1: 'bob' made k@alice#1, 'alice' made f@alice#1"):
            await bounded(bob.receiver.get("alice", "1:0", "k@alice#1"))

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)


def test_a_divergence_is_found_when_the_peer_has_made_more_calls():
    async def test(alice, bob):
        # alice's program is a call ahead: bob compares the three calls both made, and alice answers
        # with the digests of those three only
        share(alice.receiver, ["f@alice#1", "g@alice#2", "h@bob#3", "i@alice#4"])
        share(bob.receiver, ["f@alice#1", "k@alice#2", "h@bob#3"])
        with pytest.raises(FedDivergenceError,
                           match=r"diverged at call 2: 'bob' made k@alice#2, 'alice' made g@alice#2"):
            await bounded(bob.receiver.get("alice", "2:0", "k@alice#2"))

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)


def test_a_divergence_older_than_the_kept_fingerprints_is_found_without_names():
    async def test(alice, bob):
        later = [f"g@alice#{n}" for n in range(2, KEEP + 3)]
        share(alice.receiver, ["f@alice#1", *later])
        share(bob.receiver, ["k@alice#1", *later])
        with pytest.raises(FedDivergenceError,
                           match=r"diverged at call 1: 'bob' made \(not kept\), 'alice' made \(not kept\)"):
            await bounded(bob.receiver.get("alice", "2:0", "g@alice#2"))

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)


@pytest.mark.parametrize("which", [{"upto": 3}, {"call": 3}, {"upto": 0}, {"call": 0}, {}])
def test_a_calls_request_out_of_range_is_refused_as_malformed(which):
    async def test(alice, bob):
        share(bob.receiver, ["f@alice#1", "g@alice#2"])
        connection = alice.sender._link.connect("bob", link.CONTROL)
        with pytest.raises(LinkError) as refused:
            await connection.unary(link.CALLS, wire.encode_calls_request("j", "alice", **which), timeout=2)
        assert refused.value.code == link.Refusal.MALFORMED.value

    run(test, timeout_in_ms=10_000)


def test_the_same_calls_are_not_a_divergence():
    async def test(alice, bob):
        share(alice.receiver, ["f@alice#1", "g@alice#2"])
        share(bob.receiver, ["f@alice#1", "g@alice#2"])
        asyncio.ensure_future(push_later(alice, 0.8, "2:0", "g@alice#2"))
        assert await bounded(bob.receiver.get("alice", "2:0", "g@alice#2")) == "late"

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)


def test_a_value_its_owner_passed_without_pushing_will_not_come_and_the_wait_says_so():
    async def test(alice, bob):
        share(bob.receiver, ["f@alice#1"])
        # alice's program made two calls and started no push of 1:0 to bob (a bug, or an unencodable value)
        share(alice.receiver, ["f@alice#1", "g@alice#2"], started=[("bob", "9:0")])
        started = now()
        with pytest.raises(FedError, match="1:0"):
            await bounded(bob.receiver.get("alice", "1:0", "f@alice#1", asked_at=1))
        assert elapsed(started) < 1

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)


def test_a_value_whose_push_started_is_waited_for():
    async def test(alice, bob):
        share(bob.receiver, ["f@alice#1"])
        share(alice.receiver, ["f@alice#1", "g@alice#2"], started=[("bob", "1:0")])
        asyncio.ensure_future(push_later(alice, 0.8))
        assert await bounded(bob.receiver.get("alice", "1:0", "f@alice#1", asked_at=1)) == "late"

    run(test, timeout_in_ms=10_000, liveness_timeout_in_ms=500)
