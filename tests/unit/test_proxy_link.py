"""The link over a user's RayFed proxies, with proxies that keep messages in this process: what
fed puts on them, what it takes from them (checked as any push), and the classes it accepts."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from memory_parties import config, ready

from fed import _plugins
from fed._config import Plugins
from fed._exceptions import FedError, FedPeerLostError
from fed._transport import wire
from fed._transport.receiver import Receiver
from fed._transport.sender import Sender
from fed.proxy.base_proxy import ReceiverProxy, SenderProxy, SenderReceiverProxy

BOXES: dict[str, DictReceiver] = {}  # listening address -> the receiver proxy there


class DictReceiver(ReceiverProxy):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.store: dict[tuple, bytes] = {}
        self.arrived: dict[tuple, asyncio.Event] = {}

    async def start(self) -> None:
        BOXES[self._listen_addr] = self

    async def get_data(self, src_party, upstream_seq_id, curr_seq_id):
        key = (src_party, upstream_seq_id, curr_seq_id)
        await self.arrived.setdefault(key, asyncio.Event()).wait()
        return self.store.pop(key)

    def put(self, src, up, down, data) -> None:
        self.store[(src, up, down)] = data
        self.arrived.setdefault((src, up, down), asyncio.Event()).set()

    def stop(self) -> None:
        BOXES.pop(self._listen_addr, None)


class DictSender(SenderProxy):
    sent: list[tuple] = []

    async def send(self, dest_party, data, upstream_seq_id, downstream_seq_id):
        box = BOXES.get(self._addresses[dest_party])
        if box is None:
            raise ConnectionRefusedError("nobody listens there")
        DictSender.sent.append((self._party, dest_party, upstream_seq_id, downstream_seq_id, type(data)))
        box.put(self._party, upstream_seq_id, downstream_seq_id, data)
        return True


def proxied(party: str, **comm):
    cfg = config(party, **comm)
    return dataclasses.replace(cfg, link="proxy", plugins=Plugins(DictSender, DictReceiver, comm=comm))


def run(test, **comm):
    async def main():
        alice, bob = proxied("alice", **comm), proxied("bob", **comm)
        made = {c.party: (Receiver(c), Sender(c)) for c in (alice, bob)}
        for receiver, _ in made.values():
            await receiver.start()
        try:
            await test(made)
        finally:
            for receiver, sender in made.values():
                await sender.stop()
                await receiver.stop(0)
    DictSender.sent.clear()
    asyncio.run(main())


def test_a_value_crosses_as_bytes_of_the_wire_format_and_is_fetched_when_waited_for():
    async def test(made):
        alice, bob = made["alice"][1], made["bob"][0]
        value = np.arange(100_000, dtype=np.int64)  # over a chunk: one message all the same
        await alice.send("bob", "1:0", "f@alice#1", ready(value))
        assert ("alice", "bob", "1:0", "fed-value", bytes) in DictSender.sent
        assert bob.counts()["values"] == 0  # held by the user's proxy until bob's program asks
        np.testing.assert_array_equal(await bob.get("alice", "1:0", "f@alice#1"), value)
        assert bob.counts()["values"] == 1

    run(test, chunk_size_in_bytes=4096)


def test_a_message_fetched_under_another_values_id_is_refused_and_the_wait_says_so():
    async def test(made):
        bob = made["bob"][0]
        head = wire.encode_header(wire.Header("j", "alice", "bob", "2:0", "g@alice#2", "fed", (1,)))
        message = wire.encode_whole(head, [memoryview(b"x")])
        BOXES[proxied("bob").listen_address].put("alice", "1:0", "fed-value", message)
        with pytest.raises(FedError, match="could not be received: it was refused: a value fetched under "
                                           "another value's id"):
            await asyncio.wait_for(bob.get("alice", "1:0", "f@alice#1"), 2)

    run(test)


@pytest.mark.parametrize("data, words", [(b"\x00" * 3, "shorter than its length field"),
                                         ("text", "the receiver proxy returned str, not the bytes")])
def test_what_is_not_a_message_of_fed_ends_the_wait_with_the_reason(data, words):
    async def test(made):
        bob = made["bob"][0]
        BOXES[proxied("bob").listen_address].put("alice", "1:0", "fed-value", data)
        with pytest.raises(FedError, match=words):
            await asyncio.wait_for(bob.get("alice", "1:0", "f@alice#1"), 2)
        assert bob.stats()["waiting_bytes"] == 0

    run(test)


def test_heartbeats_keep_a_peer_alive_and_their_end_loses_it():
    async def test(made):
        bob, alice_receiver = made["bob"][0], made["alice"][0]
        bob.peers_started(["alice"])
        waiting = asyncio.ensure_future(bob.get("alice", "1:0", "f@alice#1"))
        await asyncio.sleep(1.5)  # three liveness timeouts: alive, by its heartbeats
        assert not waiting.done()
        await alice_receiver.stop(0)  # its heartbeats stop
        with pytest.raises(FedPeerLostError, match="party 'alice' is lost"):
            await asyncio.wait_for(waiting, 0.5 + 0.2 + 2 + 1)  # liveness, two beats, the fetch grace

    run(test, liveness_timeout_in_ms=500, timeout_in_ms=60_000)


class Sync(SenderReceiverProxy):
    def start(self): ...
    def get_data(self, src_party, upstream_seq_id, curr_seq_id): ...
    def send(self, dest_party, data, upstream_seq_id, downstream_seq_id): ...


@pytest.mark.parametrize("kw, words", [
    ({"sender": DictSender}, r"fed.init\(sender_proxy_cls=...\) needs receiver_proxy_cls too"),
    ({"receiver": DictReceiver}, r"fed.init\(receiver_proxy_cls=...\) needs sender_proxy_cls too"),
    ({"sender": DictReceiver, "receiver": DictReceiver}, "sender_proxy_cls=...\\) takes a subclass of "
                                                         "fed.proxy.base_proxy.SenderProxy"),
    ({"sender": DictSender, "receiver": object()}, "receiver_proxy_cls"),
    ({"both": Sync, "sender": DictSender}, "receiver_sender_proxy_cls alone"),
    ({"both": DictSender}, "SenderReceiverProxy"),
])
def test_proxy_classes_that_do_not_fit_are_refused_by_name(kw, words):
    args = {"sender": None, "receiver": None, "both": None, **kw}
    with pytest.raises(ValueError, match=words):
        _plugins.plugins(args["sender"], args["receiver"], args["both"], None, None)


def test_proxy_classes_that_fit_are_taken_with_the_jobs_config():
    got = _plugins.plugins(DictSender, DictReceiver, None, {"ca_cert": "x"}, {"timeout_in_ms": 5})
    assert (got.sender, got.receiver, got.both, got.tls_config) == (DictSender, DictReceiver, None, {"ca_cert": "x"})
    assert got.proxy_config().timeout_in_ms == 5 and got.proxy_config().other is None
    assert _plugins.plugins(None, None, Sync, None, None).both is Sync
    assert _plugins.plugins(None, None, None, None, None) is None
