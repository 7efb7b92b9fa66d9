"""An outbound-only party over the in-memory link: it listens nowhere, and its peers' calls to it
ride on the standby calls it opens to them (``fed._transport.reverse``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import numpy as np
import pytest
from memory_parties import ADDRESSES, net, ready

from fed._config import build_config
from fed._exceptions import FedSendError
from fed._transport import link, reverse, wire
from fed._transport.receiver import Receiver
from fed._transport.sender import Sender

CHUNK = 64 * 1024


def configs(outbound=("bob",), parties=("alice", "bob"), **comm):
    cluster = {p: {"outbound_only": True} if p in outbound else {"address": ADDRESSES[p]} for p in parties}
    return {p: dataclasses.replace(build_config(party=p, cluster=cluster, job_name="j", config={"cross_silo_comm": {
        "timeout_in_ms": 2000, "chunk_size_in_bytes": CHUNK, **comm}}), link="memory") for p in parties}


@contextlib.asynccontextmanager
async def started(cfgs):
    made = {p: (Receiver(c), Sender(c)) for p, c in cfgs.items()}
    for receiver, _ in made.values():
        await receiver.start()
    try:
        yield made
    finally:
        for receiver, sender in made.values():
            await sender.stop()
            await receiver.stop(0)


def run(test, cfgs):
    async def main():
        async with started(cfgs) as made:
            await asyncio.wait_for(test(made), 30)
    asyncio.run(main())


async def standbys(party="alice", peer="bob", n=reverse.IDLE):
    """Wait until ``peer`` keeps ``n`` idle standbys open to ``party``."""
    pool = reverse.pool("j", party, peer)
    while len(pool._idle) < n:
        await asyncio.sleep(0.01)
    return pool


def test_an_outbound_only_party_listens_nowhere_and_takes_values_both_ways():
    async def test(p):
        (a_recv, alice), (b_recv, bob) = p["alice"], p["bob"]
        assert set(net().servers) == {ADDRESSES["alice"]}  # bob serves no address
        await alice.ping("bob")
        small, large = np.arange(10), np.arange(40 * CHUNK, dtype=np.uint8)
        for i, value in enumerate((small, large)):
            await alice.send("bob", f"{i}:0", f"f@alice#{i}", ready(value))
            np.testing.assert_array_equal(await b_recv.get("alice", f"{i}:0", f"f@alice#{i}"), value)
        await bob.send("alice", "9:0", "f@bob#9", ready(large))
        np.testing.assert_array_equal(await a_recv.get("bob", "9:0", "f@bob#9"), large)
        assert net().calls[(ADDRESSES["alice"], link.STANDBY)] >= reverse.IDLE + 3
        await standbys()  # the dialer opened new ones for those it served
        assert b_recv.counts()["values"] == 2 and a_recv.counts()["values"] == 1

    run(test, configs())


def test_a_refusal_at_the_outbound_only_party_reaches_the_sender_in_its_own_words():
    async def test(p):
        _, alice = p["alice"]
        await standbys()
        with pytest.raises(FedSendError, match="RESOURCE_EXHAUSTED: value of .* exceeds this party's "
                                               "messages_max_size_in_bytes=100000"):
            await alice.send("bob", "1:0", "f@alice#1", ready(np.zeros(200_000, np.uint8)))

    cfgs = configs()
    cfgs["bob"] = dataclasses.replace(cfgs["bob"], comm=dataclasses.replace(cfgs["bob"].comm,
                                                                            messages_max_size_in_bytes=100_000))
    run(test, cfgs)


def test_a_cut_push_to_an_outbound_only_party_resumes_on_a_new_standby(caplog):
    caplog.set_level("INFO", "fed.receiver")

    async def test(p):
        (_, alice), (b_recv, _) = p["alice"], p["bob"]
        await standbys()
        value = np.arange(64 * CHUNK, dtype=np.uint8)
        # bob's standby that carries the push breaks once it carried 40 of his acks (10 bytes each)
        net().fault(ADDRESSES["alice"]).cut_after = 400
        await alice.send("bob", "1:0", "f@alice#1", ready(value))
        np.testing.assert_array_equal(await b_recv.get("alice", "1:0", "f@alice#1"), value)
        assert alice.meter.snapshot()["bob"]["retries"] == 1
        resumed = [r.getMessage() for r in caplog.records if "resumes at byte" in r.getMessage()]
        assert len(resumed) == 1 and int(resumed[0].split()[-1]) > 30 * CHUNK, resumed  # not from byte 0
        stats = b_recv.stats()
        assert stats["waiting_bytes"] == 0 and stats["peers"]["alice"]["duplicates"] == 0

    run(test, configs(inflight_window_in_bytes=4 * CHUNK))


def test_a_party_that_is_not_outbound_only_cannot_offer_standbys():
    async def test(p):
        _, bob = p["bob"]
        stream = await bob._link.connect("alice", link.STANDBYS).stream(link.STANDBY, 1)
        await stream.write(wire.encode_standby("j", "bob"))
        with pytest.raises(link.LinkError, match="PERMISSION_DENIED: standby calls are taken only from "
                                                 "outbound-only parties"):
            await stream.read()

    run(test, configs(outbound=(), parties=("alice", "bob")))


def test_a_peer_holds_at_most_max_standbys_of_an_outbound_only_party():
    async def test(p):
        _, bob = p["bob"]
        await standbys()
        streams = []
        for _ in range(reverse.MAX_STANDBYS - reverse.IDLE):
            stream = await bob._link.connect("alice", link.STANDBYS).stream(link.STANDBY, 1)
            await stream.write(wire.encode_standby("j", "bob"))
            streams.append(stream)
        await standbys(n=reverse.MAX_STANDBYS)
        stream = await bob._link.connect("alice", link.STANDBYS).stream(link.STANDBY, 1)
        await stream.write(wire.encode_standby("j", "bob"))
        with pytest.raises(link.LinkError, match="UNAVAILABLE: this party holds 96 standby calls of yours already"):
            await stream.read()
        for stream in streams:
            stream.cancel()

    run(test, configs())


@pytest.mark.parametrize("cluster, message", [
    ({"alice": {"outbound_only": True}, "bob": {"outbound_only": True}}, "at most one party may be outbound_only"),
    ({"alice": {"address": "a:1"}, "bob": {"outbound_only": True, "address": "b:1"}}, "has no 'address'"),
    ({"alice": {"address": "a:1"}, "bob": {}}, r"must have an 'address' \(or 'outbound_only': True"),
    ({"alice": {"address": "a:1"}, "bob": {"outbound_only": "yes"}}, "must be True or False"),
    ({"alice": {"address": "a:1"}, "bob": {"outbound_only": True, "proxy": "socks5://p:1"}}, "'http://host:port'"),
])
def test_outbound_only_settings_are_checked_at_init(cluster, message):
    with pytest.raises(ValueError, match=message):
        build_config(party="alice", cluster=cluster)


def test_a_party_serving_an_outbound_only_peer_keeps_its_sender_and_receiver_in_the_driver():
    cluster = {"alice": {"address": "a:1"}, "bob": {"outbound_only": True, "proxy": "http://p:3128"}}
    with pytest.raises(ValueError, match=r"leave out cross_silo_comm \['recv_resource_label'\]"):
        build_config(party="alice", cluster=cluster, config={"cross_silo_comm": {"recv_resource_label": {"x": 1}}})
    bob = build_config(party="bob", cluster=cluster, config={"cross_silo_comm": {"recv_resource_label": {"x": 1}}})
    assert bob.proxy == "http://p:3128" and bob.outbound_only == {"bob"}


@pytest.mark.parametrize("frames, why", [
    ([b"Nonsense"], "INVALID_ARGUMENT: unknown carried call"),
    ([b"Ping"], "DEADLINE_EXCEEDED: no request for 0.5 s"),  # and its standby goes back to bob
])
def test_a_carried_call_the_outbound_only_party_cannot_serve_is_refused_and_frees_its_standby(frames, why):
    async def test(p):
        pool = await standbys()
        carried = reverse._Carried(await pool.take(1, False))
        for frame in frames:
            await carried.write(frame)
        with pytest.raises(link.LinkError, match=why):
            await carried.read()
        await standbys()  # bob opened another

    run(test, configs(timeout_in_ms=500))


def test_a_ping_waits_for_a_standby_while_all_of_the_peers_carry_calls_and_fails_at_once_without_any():
    async def test(p):
        pool = await standbys()
        taken = [await pool.take(1, False) for _ in range(reverse.IDLE)]  # bob does not know yet
        connection = reverse.Connection(pool)
        ping = asyncio.ensure_future(connection.unary(link.PING, wire.encode_ping("j", "alice"), timeout=5))
        await asyncio.sleep(0.1)
        assert not ping.done()  # not UNAVAILABLE: bob is there, every standby of his is in use
        taken[0].finish()  # that standby ends unused: bob opens another, and the ping takes it
        who, job, *_ = wire.decode_ping_answer(await ping)
        assert (who, job) == ("bob", "j")
        for standby in taken[1:]:
            standby.finish()
        with pytest.raises(link.LinkError, match="UNAVAILABLE"):  # a peer holding no standby here
            await reverse.Connection(reverse.Pool()).unary(link.PING, wire.encode_ping("j", "alice"), timeout=5)

    run(test, configs())
