"""Party identity over real mutual TLS (gRPC on loopback, no Ray): fed reads names from certificates
exactly, on both sides, and a sender sends nothing to a server that has not proved it is the party."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import grpc
import pytest
from cert_kit import issue
from harness import addresses, assert_ok, free_ports, run_script
from test_receiver import ready, serving

from fed._config import build_config, read_tls
from fed._exceptions import FedSendError
from fed._security.certs import make_certs
from fed._security.server_proof import Prover
from fed._transport import grpc_link, wire
from fed._transport.receiver import Receiver
from fed._transport.sender import Sender


def parties(tmp_path, names=("alice", "bob", "carol")):
    files = make_certs(list(names), tmp_path / "ca")
    ports = free_ports(len(names))
    addrs = {p: f"127.0.0.1:{port}" for p, port in zip(names, ports)}
    config = {"cross_silo_comm": {"timeout_in_ms": 2000}}
    return {p: build_config(party=p, addresses=addrs, job_name="j", tls_config=files[p], config=config)
            for p in names}, tmp_path / "ca"


class RecordingServer:
    """A TLS server at bob's address that takes whatever a client sends and remembers it; it
    answers every call at once with the initial metadata it is given (a forged or relayed proof)."""

    def __init__(self, address, tls, metadata=()):
        self.frames: list[bytes] = []
        self._address, self._tls, self._metadata = address, tls, tuple(metadata)

    async def _push(self, requests, context):
        await context.send_initial_metadata(self._metadata)
        async for frame in requests:
            self.frames.append(frame)
            await context.write(wire.encode_ack(0))

    async def _unary(self, request, context):
        await context.send_initial_metadata(self._metadata)
        self.frames.append(request)
        return wire.encode_ping_answer("bob", "j")

    async def __aenter__(self):
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("fed.Receiver", {
            "Push": grpc.stream_stream_rpc_method_handler(self._push),
            "Pushes": grpc.stream_stream_rpc_method_handler(self._push),
            "PushWhole": grpc.unary_unary_rpc_method_handler(self._unary),
            "Ping": grpc.unary_unary_rpc_method_handler(self._unary)})])
        self.server.add_secure_port(self._address, grpc_link.server_credentials(self._tls))
        await self.server.start()
        return self

    async def __aexit__(self, *exc):
        await self.server.stop(0)


@pytest.mark.parametrize("impostor", ["BOB", "wildcard"])
def test_a_server_whose_certificate_passes_grpc_but_does_not_name_the_party_gets_nothing(tmp_path, impostor):
    names = ("alice", "bob.example.org") if impostor == "wildcard" else ("alice", "bob")
    cfg, ca = parties(tmp_path, names)
    dst = names[1]
    # gRPC's own check takes these for dst: case-insensitive, and *.example.org matches bob.example.org.
    dns = ["*.example.org"] if impostor == "wildcard" else ["BOB"]
    fake_tls = read_tls(issue(ca, "impostor", tmp_path / "fake", dns=dns))
    fake = dataclasses.replace(cfg[dst], tls=fake_tls, listen_address=cfg[dst].addresses[dst])

    async def main():
        async with serving(fake, cfg["alice"]) as (receiver, (sender,)):
            with pytest.raises(FedSendError, match=f"is not party '{dst}'.*not '{dst}'"):
                await sender.ping(dst)
            with pytest.raises(FedSendError, match=f"is not party '{dst}'") as info:
                await sender.send(dst, "1:0", "f@alice#1", ready("the secret"))
            assert "Nothing of this party's values was sent" in str(info.value)
            # The impostor (a fed receiver holding that certificate) took no value; the recording
            # server below shows that not even a header frame leaves.
            assert receiver.counts() == {"values": 0, "duplicates": 0, "buffered_bytes": 0}

    asyncio.run(main())


def test_a_server_relaying_another_partys_proof_gets_no_frame(tmp_path):
    cfg, ca = parties(tmp_path)
    # carol holds a certificate gRPC takes for bob, and replays the proof bob gave *her*.
    bob_tls = cfg["bob"].tls
    relayed = Prover(bob_tls.cert, bob_tls.key, "j", "bob").metadata(frozenset({"carol", "localhost"}))
    fake_tls = read_tls(issue(ca, "carol-as-bob", tmp_path / "fake", dns=["BOB"]))

    async def main():
        async with RecordingServer(cfg["bob"].addresses["bob"], fake_tls, relayed) as fake:
            sender = Sender(cfg["alice"])
            try:
                for value in ("small secret", b"x" * 5_000_000):  # one-message and streamed sizes
                    with pytest.raises(FedSendError, match="proved it is 'bob' to another client"):
                        await sender.send("bob", "1:0", "f@alice#1", ready(value))
                with pytest.raises(FedSendError, match="to another client"):
                    await sender.ping("bob")
                assert await sender.bye("bob", "aborted", "ValueError", "the secret cause") is False
            finally:
                await sender.stop()
            assert fake.frames == [wire.encode_ping("j", "alice")], fake.frames  # only the ping's request

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["email", "uri", "case", "stranger"])
def test_a_client_whose_certificate_does_not_name_a_party_exactly_is_refused_on_every_call(tmp_path, kind):
    cfg, ca = parties(tmp_path)
    sans = {"email": {"emails": ["alice"]}, "uri": {"uris": ["alice"]}, "case": {"dns": ["ALICE"]},
            "stranger": {"dns": ["mallory"]}}[kind]
    tls = read_tls(issue(ca, "mallory", tmp_path / "client", **sans))

    async def main():
        receiver = Receiver(cfg["bob"])
        await receiver.start()
        channel = grpc_link.open_channel(cfg["bob"].addresses["bob"], "bob", tls, 4 << 20)
        try:
            calls = {
                "Ping": channel.unary_unary(grpc_link.PING_METHOD)(wire.encode_ping("j", "alice", 1), timeout=5),
                "Calls": channel.unary_unary(grpc_link.CALLS_METHOD)(wire.encode_calls_request("j", "alice", upto=1),
                                                               timeout=5),
                "Bye": channel.stream_unary(grpc_link.BYE_METHOD)(iter([wire.encode_bye("j", "alice", "finished")]),
                                                           timeout=5),
            }
            for name, call in calls.items():
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call
                assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, (name, info.value)
                assert "client certificate does not name the claimed source party 'alice'" in info.value.details()
            assert receiver._peers.gone("alice") is None  # the forged goodbye did nothing
        finally:
            await channel.close()
            await receiver.stop(0)

    asyncio.run(main())


def test_certificates_that_name_no_party_fail_init_at_once_saying_what_they_name(tmp_path):
    """Each party finds it within seconds of its peer's server coming up. (A party whose peer has
    already given up and gone cannot read its certificate any more: it fails after timeout_in_ms,
    20 s here, which is why only one of them is held to the seconds.)"""
    make_certs(["server"], tmp_path)  # one certificate for both parties, for the name 'server'

    parties = run_script("tls_names.py", addresses("alice", "bob"), str(tmp_path), "plain", timeout=120)

    assert_ok(parties)
    took = {}
    for name, peer in (("alice", "bob"), ("bob", "alice")):
        line = next(x for x in parties[name].output.splitlines() if x.startswith(f"{name} INIT FAILED"))
        if "presents a TLS certificate" in line:
            took[name] = float(re.search(r"after ([0-9.]+) s", line).group(1))
            assert f"party {peer!r} at " in line and f"for 'localhost', 'server', not {peer!r}" in line, line
            assert "fed certs" in line and "tls_config['party_cert_names']" in line
    assert took and min(took.values()) < 10, took  # the receiver's start and a short try, not 20 s


def test_party_cert_names_maps_parties_to_the_names_their_certificates_carry(tmp_path):
    make_certs(["server"], tmp_path)

    parties = run_script("tls_names.py", addresses("alice", "bob"), str(tmp_path), "mapped", timeout=120)

    assert_ok(parties)
    assert "alice RESULT 5" in parties["alice"].output and "bob RESULT 5" in parties["bob"].output
