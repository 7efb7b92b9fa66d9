"""A hostile peer against a receiver in a process of its own (real gRPC, no Ray).

For each kind of attack the peer sends what an attacker would, and the test checks what the
perimeter promises: the receiver's own status code, in fed's own words (nothing the peer sent
echoed back); no code ran (a canary file); the receiver process is alive and still takes an
honest value; its memory (peak RSS) stayed within its caps; and its log lines stayed short, with
no line the peer forged.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import re
import subprocess
import sys
import time

import grpc
import msgpack
import numpy as np
import pytest
import zstandard
from harness import ROOT, SCRIPTS, free_ports

from fed._cli.sessions import kill_session
from fed._config import build_config
from fed._serialization import codec, records, tags
from fed._transport import grpc_link, wire
from fed._transport.sender import Sender

CAP = 64 << 20
SECRET = "SECRET-91be"  # put in payloads: must never come back in a refusal
FORGED = "FORGED LOG LINE"
M = tags.EXTS


class LoneReceiver:
    """bob's receiver in its own process (scripts/lone_receiver.py), and what it logs and holds."""

    def __init__(self, tmp_path, canary, cap: int = CAP) -> None:
        ports = free_ports(2)
        self.addrs = {"alice": f"127.0.0.1:{ports[0]}", "bob": f"127.0.0.1:{ports[1]}"}
        comm = {"timeout_in_ms": 2000, "max_buffered_bytes": cap, "chunk_size_in_bytes": 1 << 20,
                "serializing_allowed_list": {"perimeter_types": ["*"]}, "liveness_timeout_in_ms": 60_000}
        kwargs = {"party": "bob", "addresses": self.addrs, "job_name": "j", "config": {"cross_silo_comm": comm}}
        self.log = tmp_path / "bob.log"
        self.proc = subprocess.Popen([sys.executable, str(SCRIPTS / "lone_receiver.py"), json.dumps(kwargs),
                                      str(self.log)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=ROOT, start_new_session=True,
                                     env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{SCRIPTS}"})
        assert self.proc.stdout.readline().strip() == "READY"
        self.alice = build_config(party="alice", addresses=self.addrs, job_name="j",
                                  config={"cross_silo_comm": {"timeout_in_ms": 5000, "chunk_size_in_bytes": 1 << 20}})
        self.canary = canary
        self.honest = 0

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stats(self) -> dict:
        return json.loads(self.ask("stats").removeprefix("STATS "))

    def peak_rss(self) -> int:
        status = open(f"/proc/{self.proc.pid}/status").read()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def assert_intact(self, log_from: int) -> None:
        """Alive, no code ran, short unforged log lines, and an honest value still arrives."""
        assert self.proc.poll() is None, "the receiver process died"
        assert not self.canary.exists(), "a payload ran a command"
        for line in self.log_lines()[log_from:]:
            assert len(line) <= 1000, line[:300]
            assert not line.startswith(FORGED), line
        self.honest += 1
        object_id = f"honest:{self.honest}"

        async def push():
            sender = Sender(self.alice)
            try:
                await sender.send("bob", object_id, "f@alice#h", [_done(np.arange(1000))])
            finally:
                await sender.stop()
        asyncio.run(push())
        assert self.ask(f"get alice {object_id} f@alice#h").startswith("GOT array([  0,   1,"), "no honest value"

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        kill_session(self.proc.pid)


def _done(value):
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


@pytest.fixture(scope="module")
def bob(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    receiver = LoneReceiver(tmp, tmp / "canary")
    base = receiver.peak_rss()
    yield receiver
    # Whatever came, bob's memory stayed within what his caps allow (plus the interpreter's own).
    assert receiver.peak_rss() - base < CAP + (96 << 20), (receiver.peak_rss() - base) / 2**20
    receiver.close()


def header(segments, copied=(), object_id=None, **fields):
    base = dict(job="j", src="alice", dst="bob", object_id=object_id or f"h:{time.monotonic_ns()}",
                fingerprint="f@alice#1", codec="fed", segments=tuple(segments), copied=tuple(copied))
    return wire.encode_header(wire.Header(**{**base, **fields}))


def record_doc(obj) -> bytes:
    out = bytearray()
    records.add(out, records.VALUE, msgpack.packb(obj, use_bin_type=True))
    return bytes(out)


def pushed(payload_segments: list[bytes], copied=(), **fields) -> list[bytes]:
    """The frames of a push of hand-made segments."""
    sizes = [len(s) for s in payload_segments]
    payload = b"".join(wire.iter_payload([memoryview(s) for s in payload_segments], 1 << 62))
    return [header(sizes, copied, **fields)] + [payload[i:i + (1 << 20)] for i in range(0, len(payload), 1 << 20)]


def pickled_value(stream: bytes, objects=()) -> list[bytes]:
    return pushed([record_doc([M[tags.PICKLED], stream, list(objects)])])


def stack_global(module: str, name: str) -> bytes:
    return (pickle.SHORT_BINUNICODE + bytes([len(module)]) + module.encode() + pickle.SHORT_BINUNICODE
            + bytes([len(name)]) + name.encode() + pickle.STACK_GLOBAL)


def calls_system(module: str, name: str, canary) -> bytes:
    command = f"touch {canary}".encode()
    return (b"\x80\x04" + stack_global(module, name) + pickle.SHORT_BINUNICODE + bytes([len(command)]) + command
            + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)


async def stream(address, frames, timeout=20, method=grpc_link.PUSH_METHOD):
    """Push ``frames`` as a sender would (data only once the header is admitted); the receiver's
    final answer, or its (status, details)."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(method)(timeout=timeout)
        try:
            await call.write(frames[0])
            first = await call.read()
            if first is grpc.aio.EOF:
                return await call.code(), await call.details()
            if first[:1] == wire.LANE_REFUSED:  # refused: its frame, then the same status
                return await call.code(), await call.details()
            if wire.decode_ack(first) is None:
                return first
            for frame in frames[1:]:
                await call.write(frame)
            await call.done_writing()
            last = first
            while (message := await call.read()) is not grpc.aio.EOF:
                last = message
            code = await call.code()
            return last if code == grpc.StatusCode.OK else (code, await call.details())
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details()
        except asyncio.InvalidStateError:
            return await call.code(), await call.details()


async def unary(address, method, request, timeout=10):
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            return await channel.unary_unary(method)(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details()


async def bye(address, request, timeout=10):
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            return await channel.stream_unary(grpc_link.BYE_METHOD)(iter([request]), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details()


IA, PD, NF = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND
RE = grpc.StatusCode.RESOURCE_EXHAUSTED
DEEP = (b"[" * 100_000) + (b"]" * 100_000)


def attacks(canary):
    """(name, how, what, expected status, words of the receiver's answer)."""
    empty_maps_10mb = bytearray()
    records.add(empty_maps_10mb, records.OPEN_LIST)
    for _ in range(40):
        records.add(empty_maps_10mb, records.VALUES, b"\xdc\xff\xff" + b"\x80" * 0xFFFF)
    records.add(empty_maps_10mb, records.CLOSE)
    zstd = zstandard.ZstdCompressor(level=3)
    honest, fake = zstd.compress(bytes(4 << 20)), zstd.compress(bytes(1024))  # a frame claiming 1 KiB, holding 4 MiB
    lying = fake[:zstandard.frame_header_size(fake)] + honest[zstandard.frame_header_size(honest):]
    unsized = zstandard.ZstdCompressor(level=3, write_content_size=False).compress(bytes(256 << 20))
    colliding = [[M[tags.BIG_INT], (5 + i * (2**61 - 1)).to_bytes(10, "little", signed=True)] for i in range(5000)]
    return [
        # 1. attribute traversal through a module listed with '*'
        ("traversal_dotted", "stream", pickled_value(calls_system("perimeter_types", "os.system", canary)), IA,
         "does not accept"),
        ("traversal_module", "stream", pickled_value(calls_system("perimeter_types", "os", canary)), IA,
         "does not accept"),
        ("traversal_inst", "stream", pickled_value(b"(S'touch " + str(canary).encode() + b"'\nipe" + b"rimeter_types\n"
                                                   b"os.system\n."), IA, "does not accept"),
        ("builtins_eval", "stream", pickled_value(calls_system("builtins", "eval", canary)), IA, "does not accept"),
        ("posix_system", "stream", pickled_value(calls_system("posix", "system", canary)), IA, "does not accept"),
        # 2. numpy internals as constructors
        ("numpy_reconstruct", "stream", pickled_value(calls_system("numpy.core.multiarray", "_reconstruct", canary)),
         IA, "does not accept"),
        ("object_array", "stream", pushed([record_doc([M[tags.NDARRAY], "|O", [4], False, b"\x41" * 32])]), IA,
         "dtype"),
        ("dtype_state", "stream", pickled_value(b"\x80\x04" + stack_global("numpy", "dtype") + b"\x8c\x02O8\x85R"
                                                b"(K\x03\x8c\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb."),
         IA, "does not accept"),
        ("array_setstate", "stream", pickled_value(b"\x80\x04K\x00Q}b.", [[M[tags.NDARRAY], "|u1", [1], False,
                                                                           b"\x01"]]), IA, "changes something"),
        # 3. unbounded decoding
        ("bytearray_bomb", "stream", pickled_value(b"\x80\x04" + stack_global("builtins", "bytearray")
                                                   + b"\x8a\x05\x00\x00\x00\x00\x10\x85R."), IA, "does not accept"),
        ("array32_claim", "stream", pushed([b"\x00\x05\x00\x00\x00\xdd\xff\xff\xff\xff"]), IA, "malformed value"),
        ("empty_maps_over_cap", "stream", pushed([bytes(empty_maps_10mb)]), RE, "max_buffered_bytes"),
        ("deep_nesting", "stream", pushed([bytes([0]) + (2001).to_bytes(4, "little") + b"\x91" * 2000 + b"\xc0"]),
         IA, "malformed value"),
        ("colliding_keys", "stream", pushed([record_doc([M[tags.SET], *colliding])]), IA, "crafted to collide"),
        ("bytearray8_claim", "stream", pickled_value(b"\x80\x05\x96" + (1 << 40).to_bytes(8, "little") + b"."), IA,
         "malformed pickled"),
        # 4. what the caps count: long header fields
        ("long_object_id", "stream", [header([1], object_id="x" * 900_000)], IA, "object_id"),
        # 6. fields that would forge log lines
        ("newline_src", "stream", [header([1], src=f"alice\n{FORGED}")], IA, "'src' is not a party name"),
        ("newline_object_id", "stream", [header([1], object_id=f"1:0\n{FORGED}")], IA, "object_id"),
        ("long_job", "stream", [header([1], job="j" * 128)], NF, "unknown job"),
        ("forged_registered_name", "stream", pushed([record_doc([M[tags.REGISTERED], f"x\n{FORGED}{SECRET}", {}])]),
         IA, "not registered"),
        # 8. control calls from someone who is no peer of the job
        ("ping_stranger", "ping", wire.encode_ping("j", "mallory"), PD, "unknown source party"),
        ("calls_stranger", "calls", wire.encode_calls_request("j", "mallory", upto=1), PD, "unknown source party"),
        ("calls_other_job", "calls", wire.encode_calls_request("other", "alice", upto=1), NF, "unknown job"),
        ("bye_stranger", "bye", wire.encode_bye("j", "mallory", "finished"), PD, "unknown source party"),
        # 10. malformed input that used to escape as UNKNOWN
        ("thousand_digit_int", "stream", [wire.MAGIC + bytes([wire.VERSION]) + b'{"segments": [' + b"9" * 5000
                                          + b"]}"], IA, "malformed header"),
        ("deep_json_header", "stream", [wire.MAGIC + bytes([wire.VERSION]) + DEEP], IA, "malformed header"),
        ("deep_json_ping", "ping", DEEP[:60_000], IA, "malformed ping"),
        ("huge_int_ping", "ping", b'{"job": "j", "src": "alice", "calls": ' + b"9" * 5000 + b"}", IA,
         "malformed ping"),
        ("deep_json_bye", "bye", DEEP[:60_000], IA, "malformed goodbye"),
        ("ping_waits_not_pairs", "ping", b'{"job": "j", "src": "alice", "waits": {"1:0": 1}}', IA, "malformed ping"),
        ("ping_waits_too_many", "ping", wire.encode_ping("j", "alice", 0, [("1:0", 0)] * 16)[:-2]
         + b', ["1:0", 0]]}', IA, "malformed ping"),
        ("ping_waits_forged_id", "ping", b'{"job": "j", "src": "alice", "waits": [["1:0\\n' + FORGED.encode()
         + b'", 0]]}', IA, "malformed ping"),
        ("error_frame_not_object", "stream", pushed([b'["not", "an", "object"]'], codec="error"), IA, "error frame"),
        ("error_frame_nested", "stream", pushed([b"[" * 50_000], codec="error"), IA, "error frame"),
        # 11. compressed data frames: bombs and lies about sizes (each checked before it is decompressed)
        ("zstd_bomb", "stream", [header([1 << 16], compression="zstd"), zstd.compress(bytes(1 << 30))], IA,
         "holds more than the rest of the declared payload"),
        ("zstd_lying_size", "stream", [header([1 << 16], compression="zstd"), lying], IA, "not a valid zstd frame"),
        ("zstd_unsized", "stream", [header([1 << 16], compression="zstd"), unsized], IA, "must record its size"),
        ("zstd_garbage", "stream", [header([1 << 16], compression="zstd"), b"\x28\xb5\x2f\xfd" + b"\xff" * 64], IA,
         "not a valid zstd frame"),
        ("zstd_whole", "whole", wire.encode_whole(header([4], compression="zstd"), [memoryview(b"abcd")]), IA,
         "never compressed"),
        # 12. standby calls (outbound-only parties'): from a stranger, from a peer that listens, malformed
        ("standby_stranger", "standby", [wire.encode_standby("j", "mallory")], PD, "unknown source party"),
        ("standby_not_outbound", "standby", [wire.encode_standby("j", "alice")], PD, "only from outbound-only"),
        ("standby_malformed", "standby", [b'{"job": "j", "src": "alice", "x": 1}'], IA, "malformed standby"),
        ("whole_too_short", "whole", b"\x01\x02", IA, "shorter than"),
        ("whole_bad_length", "whole", (1 << 30).to_bytes(4, "little") + b"{}", IA, "shorter than"),
    ]


NAMES = [a[0] for a in attacks("canary")]


@pytest.mark.parametrize("name", NAMES)
def test_an_attack_is_refused_for_its_own_reason_and_the_receiver_holds(bob, name):
    _, how, what, code, words = next(a for a in attacks(bob.canary) if a[0] == name)
    address = bob.addrs["bob"]
    log_from = len(bob.log_lines())

    if how == "stream":
        answer = asyncio.run(stream(address, what))
    elif how == "standby":
        answer = asyncio.run(stream(address, what, method=grpc_link.STANDBY_METHOD))
    elif how == "whole":
        answer = asyncio.run(unary(address, grpc_link.PUSH_WHOLE_METHOD, what))
    elif how == "ping":
        answer = asyncio.run(unary(address, grpc_link.PING_METHOD, what))
    elif how == "calls":
        answer = asyncio.run(unary(address, grpc_link.CALLS_METHOD, what))
    else:
        answer = asyncio.run(bye(address, what))

    assert isinstance(answer, tuple), f"taken: {answer!r}"
    status, details = answer
    assert status == code and words in details, (status, details)
    assert SECRET not in details and FORGED not in details and "\n" not in details and len(details) < 300
    new = bob.log_lines()[log_from:]
    assert any(line.startswith("WARNING fed.receiver: refused a call") for line in new), new
    bob.assert_intact(log_from)


def test_a_ping_asking_about_values_gets_no_text_of_its_own_back(bob):
    waits = [(f"{i}:0{SECRET}"[:256], 0) for i in range(wire.MAX_WAITS)]

    answer = asyncio.run(unary(bob.addrs["bob"], grpc_link.PING_METHOD, wire.encode_ping("j", "alice", 0, waits)))

    assert not isinstance(answer, tuple), answer
    assert SECRET.encode() not in answer and b":0" not in answer, answer  # places in waits, never the ids
    assert wire.decode_ping_answer(answer)[:2] == ("bob", "j")


def test_refused_values_leave_no_slot_behind(bob):
    before = bob.stats()

    async def flood():
        for i in range(300):
            await stream(bob.addrs["bob"], pushed([b"\x00\x01\x00\x00\x00\xc1"], object_id=f"junk:{i}"))
    asyncio.run(flood())

    after = bob.stats()
    assert after["refused"] - before["refused"] == 300
    assert after["waiting_values"] == before["waiting_values"] and after["waiting_bytes"] == before["waiting_bytes"]
    bob.assert_intact(0)


def test_a_decodable_value_within_the_caps_is_taken_and_held_as_counted(bob):
    # 256 KiB of empty maps: the worst memory per byte msgpack offers, within bob's cap.
    doc = bytearray()
    records.add(doc, records.VALUE, b"\xdd" + (200_000).to_bytes(4, "big") + b"\x80" * 200_000)
    answer = asyncio.run(stream(bob.addrs["bob"], pushed([bytes(doc)], object_id="maps:0")))

    assert answer == b"ok", answer
    waiting = bob.stats()["waiting_bytes"]
    assert 160 * len(doc) <= waiting <= CAP
    assert bob.ask("get alice maps:0 f@alice#1").startswith("GOT [{}, {}")
    bob.assert_intact(0)


def test_pushes_that_stall_after_their_header_give_their_room_back(bob):
    address = bob.addrs["bob"]
    big = 20 << 20  # three of them, declared, hold nearly the whole cap

    async def stall(i):
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.stream_stream(grpc_link.PUSH_METHOD)(timeout=30)
            await call.write(header([16, big], object_id=f"slow:{i}"))
            assert wire.decode_ack(await call.read()) == 0  # admitted, then nothing more is sent
            started = time.monotonic()
            try:
                await call.read()
            except grpc.aio.AioRpcError as exc:
                return exc.code(), time.monotonic() - started
            return await call.code(), time.monotonic() - started

    async def main():
        stalls = [asyncio.ensure_future(stall(i)) for i in range(3)]
        await asyncio.sleep(0.5)
        held = bob.stats()["waiting_bytes"]
        ended = await asyncio.gather(*stalls)
        return held, ended

    held, ended = asyncio.run(main())
    assert held >= 3 * big
    for code, seconds in ended:
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED and 1.5 < seconds < 10, (code, seconds)
    assert bob.stats()["waiting_bytes"] < big
    bob.assert_intact(0)


def test_a_push_whose_acks_are_not_read_ends_and_gives_its_room_back(bob):
    # One ack per frame; with tiny frames and nothing read, the client's HTTP/2 window (64 KiB,
    # probing off) fills, bob's next ack waits, and bob reads no more of the stream meanwhile.
    # Bob ends the push after timeout_in_ms (2 s). (The client learns it only when it reads: the
    # status waits behind the acks it has not taken.)
    address = bob.addrs["bob"]
    total, frame = 256 << 10, 16

    async def main():
        async with grpc.aio.insecure_channel(address, options=[("grpc.http2.bdp_probe", 0)]) as channel:
            call = channel.stream_stream(grpc_link.PUSH_METHOD)(timeout=60)
            await call.write(header([total], object_id="deaf:0"))
            for _ in range(0, total, frame):
                await call.write(bytes(frame))
            held = bob.stats()["waiting_bytes"]
            started = time.monotonic()
            while bob.stats()["waiting_bytes"] >= total and time.monotonic() - started < 20:
                await asyncio.sleep(0.1)
            seconds = time.monotonic() - started
            call.cancel()
            return held, seconds

    refused = bob.stats()["refused"]
    held, seconds = asyncio.run(main())
    assert held >= total  # admitted, then its acks waited
    assert seconds < 6, seconds  # its room came back while the client still read nothing
    assert bob.stats()["waiting_bytes"] < total and bob.stats()["refused"] == refused + 1
    bob.assert_intact(0)


def test_a_slow_decode_does_not_stop_the_receiver_answering_pings(tmp_path):
    # About 15 MB of records full of small tuples: seconds of decoding, done in records of 256 KiB
    # beside the event loop. (Under a 64 MiB cap such a value is refused outright: what a value
    # may decode to is counted, so the cap bounds the work too. This receiver allows 4 GiB.)
    bob = LoneReceiver(tmp_path, tmp_path / "canary", cap=4 << 30)
    try:
        value = [(i, i) for i in range(1_500_000)]
        encoded = codec.encode(value)
        frames = pushed([bytes(s) for s in encoded.segments], object_id="tuples:0")
        address = bob.addrs["bob"]

        async def main():
            push = asyncio.ensure_future(stream(address, frames, timeout=120))
            answered = 0
            while not push.done():
                started = time.monotonic()
                reply = await unary(address, grpc_link.PING_METHOD, wire.encode_ping("j", "alice"), timeout=30)
                assert not isinstance(reply, tuple), reply
                if not push.done() and time.monotonic() - started < 1.0:
                    answered += 1
                await asyncio.sleep(0.05)
            return await push, answered

        answer, answered = asyncio.run(main())
        assert answer == b"ok", answer
        assert answered >= 3, f"only {answered} pings were answered within a second during the push"
        assert bob.ask("get alice tuples:0 f@alice#1").startswith("GOT [(0, 0), (1, 1)")
        bob.assert_intact(0)
    finally:
        bob.close()
