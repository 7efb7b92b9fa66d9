"""Liveness against a peer whose ping answers are malformed (real gRPC on loopback, no Ray): the
watch goes on, and a malformed answer counts as no answer, so the wait ends with the peer lost
within the liveness timeout instead of hanging (a malformed answer used to end the watch)."""

from __future__ import annotations

import asyncio
import re

import grpc
import pytest
from harness import addresses, assert_ok, run_script
from test_receiver import configs

from fed._exceptions import FedPeerLostError
from fed._transport import wire
from fed._transport.receiver import Receiver

MALFORMED = [
    b'{"party": "alice", "job": "j", "calls": "many", "digest": 5}',   # fields of the wrong type
    b'{"party": "alice", "job": "j", "calls": 1, "digest": [1, 2]}',
    b"[" * 50_000,                                                      # nesting past the recursion limit
    b'{"party": "alice", "job": "j", "calls": ' + b"9" * 5000 + b"}",  # an int of 5000 digits
    b"\xff\xfe not json",
    b'"a string"',
]


class Fake:
    """alice's address, answering every ping with one of ``MALFORMED`` in turn."""

    def __init__(self, address: str) -> None:
        self.address, self.pings = address, 0

    async def _ping(self, request, context):
        self.pings += 1
        return MALFORMED[self.pings % len(MALFORMED)]

    async def start(self) -> None:
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            "fed.Receiver", {"Ping": grpc.unary_unary_rpc_method_handler(self._ping)})])
        self.server.add_insecure_port(self.address)
        await self.server.start()


@pytest.mark.parametrize("first", range(len(MALFORMED)))
def test_malformed_ping_answers_do_not_stop_watching_the_peer(first):
    alice, bob = configs(liveness_timeout_in_ms=1000, timeout_in_ms=60_000)

    async def main():
        fake = Fake(alice.addresses["alice"])
        fake.pings = first - 1  # each case starts with another malformed answer
        await fake.start()
        receiver = Receiver(bob)
        await receiver.start()
        try:
            receiver.peers_started(["alice"])
            started = asyncio.get_running_loop().time()
            with pytest.raises(FedPeerLostError, match="party 'alice' is lost"):
                await asyncio.wait_for(receiver.get("alice", "1:0", "f@alice#1"), 15)
            assert asyncio.get_running_loop().time() - started < 6
            assert fake.pings - first >= 2  # answered, malformed, more than once: the watch went on
        finally:
            await receiver.stop(0)
            await fake.server.stop(0)

    asyncio.run(main())


def test_a_ping_answer_from_someone_else_is_not_an_answer():
    # A server at alice's address that answers as another party or job counts as no answer.
    assert wire.decode_ping_answer(b'{"party": "carol", "job": "j"}')[0] == "carol"


@pytest.mark.parametrize("mode", ["skip", "failed", "actor"])
def test_a_value_its_owner_will_never_push_ends_the_wait_within_seconds(mode):
    """alice drops her push of x to bob (as a bug would), her push fails without bob being told
    (an encoding failure before the error frame), or she creates an actor at bob from x with the
    constructor's pushes off (the hang before actor constructors pushed their arguments)."""
    parties = run_script("never_sent.py", addresses("alice", "bob"), mode, timeout=120)

    assert_ok(parties)
    bob, alice = parties["bob"].output, parties["alice"].output
    assert "party 'alice' will not send value 1:0 (" in bob
    assert "bob ENDED" in bob and "alice ENDED FedRemoteError" in alice
    waited = float(re.search(r"bob WAITED ([0-9.]+) s", bob).group(1))
    assert waited < 20, bob  # the liveness exchange, not a timeout: about two ping rounds
