"""The lane (``fed._transport.lane``): small pushes to a peer over one stream, on the in-memory link
(no sockets, no Ray), and the lane's own handling of a stream that misbehaves."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from memory_parties import elapsed, net, now, parties, ready

from fed._exceptions import FedSendError
from fed._serialization import codec
from fed._transport import link, wire
from fed._transport.lane import LANE_BYTES, Lane
from fed._transport.link import LinkError


def run(test, *names, **kw):
    async def main():
        async with parties(*(names or ("alice", "bob")), **kw) as made:
            await asyncio.wait_for(test(made), 30)
    asyncio.run(main())


async def send_all(alice, values, start=0):
    await asyncio.gather(*(alice.sender.send("bob", f"1:{start + i}", f"f{start + i}", ready(v))
                           for i, v in enumerate(values)))


async def get_all(bob, n, start=0):
    return [await bob.receiver.get("alice", f"1:{start + i}", f"f{start + i}") for i in range(n)]


def test_small_values_to_a_peer_share_one_lane_and_large_ones_have_calls_of_their_own():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        await send_all(alice, [np.full(100, i, np.uint8) for i in range(50)])
        assert [int(v[0]) for v in await get_all(bob, 50)] == list(range(50))
        assert net().calls[(bob.address, link.PUSHES)] == 1
        assert (bob.address, link.PUSH_WHOLE) not in net().calls
        big = np.zeros(LANE_BYTES, np.uint8)  # with its header, over the lane's limit
        await alice.sender.send("bob", "2:0", "g", ready(big))
        assert (await bob.receiver.get("alice", "2:0", "g")).nbytes == LANE_BYTES
        assert net().calls[(bob.address, link.PUSH_WHOLE)] == 1
        assert net().calls[(bob.address, link.PUSHES)] == 1

    run(test)


def test_a_refused_push_fails_alone_and_the_lane_goes_on():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        with pytest.raises(FedSendError, match="RESOURCE_EXHAUSTED"):  # over bob's whole cap, for good
            await alice.sender.send("bob", "1:0", "f0", ready(np.zeros(20_000, np.uint8)))
        await alice.sender.send("bob", "1:1", "f1", ready(np.ones(10, np.uint8)))
        assert (await bob.receiver.get("alice", "1:1", "f1")).tolist() == [1] * 10
        assert net().calls[(bob.address, link.PUSHES)] == 1
        assert alice.sender.meter.snapshot()["bob"]["retries"] == 0

    run(test, max_buffered_bytes=12_000)


def test_a_push_without_room_waits_on_the_lane_until_the_program_consumes():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        sends = asyncio.ensure_future(send_all(alice, [np.full(3000, i, np.uint8) for i in range(3)]))
        await asyncio.sleep(0.3)
        assert not sends.done()  # one value's cost fits bob's cap at a time
        assert [int(v[0]) for v in await get_all(bob, 3)] == [0, 1, 2]
        await sends
        assert alice.sender.meter.snapshot()["bob"]["retries"] >= 2
        assert net().calls[(bob.address, link.PUSHES)] == 1  # "no room" answers a push, not the lane

    run(test, max_buffered_bytes=12_000)  # one value costs about 7.8 KB there


def test_a_lane_cut_midway_is_opened_again_and_every_value_arrives_once():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        fault = net().fault(bob.address)
        fault.cut_after, fault.cuts = 5_000, 1
        await send_all(alice, [np.full(300, i % 256, np.uint8) for i in range(40)])
        assert [int(v[0]) for v in await get_all(bob, 40)] == [i % 256 for i in range(40)]
        assert net().calls[(bob.address, link.PUSHES)] == 2
        sent = alice.sender.meter.snapshot()["bob"]
        assert sent["values"] == 40 and sent["retries"] >= 1 and sent["failures"] == 0
        assert bob.receiver.counts()["values"] == 40  # each taken once (a retried one may be a duplicate)

    run(test)


def test_an_idle_lane_ends_after_timeout_in_ms_and_the_next_push_opens_another():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        await alice.sender.send("bob", "1:0", "f0", ready(1))
        await asyncio.sleep(0.8)  # bob ends the lane after 0.5 s without a push
        started = now()
        await alice.sender.send("bob", "1:1", "f1", ready(2))
        assert elapsed(started) < 0.3
        assert [await bob.receiver.get("alice", f"1:{i}", f"f{i}") for i in (0, 1)] == [1, 2]
        assert net().calls[(bob.address, link.PUSHES)] == 2
        assert alice.sender.meter.snapshot()["bob"]["retries"] == 0  # it broke while nothing waited on it

    run(test, timeout_in_ms=500)


def test_a_receiver_that_stops_ends_its_lanes_and_the_push_after_it_fails_in_time():
    async def test(p):
        alice, bob = p["alice"], p["bob"]
        await alice.sender.send("bob", "1:0", "f0", ready(1))
        await bob.receiver.stop(0)
        started = now()
        with pytest.raises(FedSendError, match="could not push 1:1"):
            await alice.sender.send("bob", "1:1", "f1", ready(2))
        assert elapsed(started) < 3  # timeout_in_ms 0.5 s, then up to 2 s telling bob

    run(test, timeout_in_ms=500)


# ---- the lane against a stream that misbehaves (a broken or hostile receiver) ----

class ScriptedStream:
    """A lane's stream whose answers the test writes."""

    def __init__(self, blocked: bool = False) -> None:
        self.written: list[bytes] = []
        self.answers: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.blocked = blocked  # writes wait, as under flow control of a receiver that reads nothing
        self._ended = asyncio.Event()

    async def write(self, frame: bytes) -> None:
        if self.blocked:
            await self._ended.wait()
            raise LinkError("CANCELLED", "Locally cancelled by application!")
        self.written.append(frame)

    async def done_writing(self) -> None:
        pass

    async def read(self) -> bytes | None:
        item = await self.answers.get()
        if isinstance(item, Exception):
            raise item
        return item

    def cancel(self) -> None:
        self.cancelled = True
        self._ended.set()


class ScriptedConnection:
    def __init__(self) -> None:
        self.streams: list[ScriptedStream] = []
        self.blocked = 0  # this many of the next streams have writes that wait forever

    async def stream(self, method: str, timeout: float) -> ScriptedStream:
        assert method == link.PUSHES
        self.streams.append(ScriptedStream(blocked=self.blocked > 0))
        self.blocked -= 1
        return self.streams[-1]


def lane_case(test):
    async def main():
        connection = ScriptedConnection()
        lane = Lane(connection)
        try:
            await asyncio.wait_for(test(lane, connection), 10)
        finally:
            lane.close()
    asyncio.run(main())


def test_answers_go_to_their_pushes_in_order_and_a_refusal_to_its_own():
    async def test(lane, conn):
        pushes = [asyncio.ensure_future(lane.push(b"p%d" % i, 5)) for i in range(3)]
        await asyncio.sleep(0.05)
        stream = conn.streams[0]
        assert stream.written == [b"p0", b"p1", b"p2"]
        for answer in (b"ok", wire.encode_lane_refusal("UNAVAILABLE", "no room", True), b"duplicate"):
            stream.answers.put_nowait(answer)
        assert await pushes[0] == b"ok"
        with pytest.raises(LinkError) as refused:
            await pushes[1]
        assert (refused.value.code, refused.value.no_room) == ("UNAVAILABLE", True)
        assert await pushes[2] == b"duplicate"
        assert len(conn.streams) == 1 and not stream.cancelled

    lane_case(test)


@pytest.mark.parametrize("answer", [b"no such answer", b"R{not json", None, b""])
def test_a_lane_whose_receiver_answers_wrongly_or_ends_fails_what_waits_and_opens_anew(answer):
    async def test(lane, conn):
        waiting = asyncio.ensure_future(lane.push(b"p0", 5))
        await asyncio.sleep(0.05)
        conn.streams[0].answers.put_nowait(answer)
        with pytest.raises(LinkError) as failed:
            await waiting
        assert failed.value.code == "UNAVAILABLE" and failed.value.transient
        assert conn.streams[0].cancelled
        again = asyncio.ensure_future(lane.push(b"p1", 5))
        await asyncio.sleep(0.05)
        assert len(conn.streams) == 2 and conn.streams[1].written == [b"p1"]
        conn.streams[1].answers.put_nowait(b"ok")
        assert await again == b"ok"

    lane_case(test)


def test_an_answer_for_no_push_breaks_the_lane():
    async def test(lane, conn):
        assert await asyncio.gather(lane.push(b"p0", 5), answer_soon(conn, b"ok")) == [b"ok", None]
        conn.streams[0].answers.put_nowait(b"ok")  # nothing waits for it
        await asyncio.sleep(0.05)
        assert conn.streams[0].cancelled
        assert await asyncio.gather(lane.push(b"p1", 5), answer_soon(conn, b"ok", 1)) == [b"ok", None]

    lane_case(test)


async def answer_soon(conn: ScriptedConnection, answer: bytes, stream: int = 0) -> None:
    while len(conn.streams) <= stream or not conn.streams[stream].written:
        await asyncio.sleep(0.01)
    conn.streams[stream].answers.put_nowait(answer)


def test_a_push_without_an_answer_in_time_times_out_and_resets_the_lane():
    async def test(lane, conn):
        started = now()
        others = asyncio.ensure_future(lane.push(b"p1", 5))
        with pytest.raises(asyncio.TimeoutError):
            await lane.push(b"p0", 0.2)
        assert 0.15 < elapsed(started) < 1
        assert conn.streams[0].cancelled
        with pytest.raises(LinkError, match="broke"):  # it waited on the same lane
            await others
        assert await asyncio.gather(lane.push(b"p2", 5), answer_soon(conn, b"ok", 1)) == [b"ok", None]

    lane_case(test)


def test_a_lane_refusal_carries_only_a_bounded_text():
    frame = wire.encode_lane_refusal("PERMISSION_DENIED", "x" * 10_000)
    answer, refusal = wire.decode_lane_answer(frame)
    assert answer is None and refusal[0] == "PERMISSION_DENIED" and len(refusal[1]) == wire.MAX_LANE_TEXT
    for bad in (b'R{"code": 5, "text": "t", "no_room": false}', b'R{"code": "X", "text": 1, "no_room": false}',
                b'R{"code": "X", "text": "t", "no_room": 1}', b"R" + b" " * (wire.MAX_CONTROL_BYTES + 1)):
        with pytest.raises(wire.WireError):
            wire.decode_lane_answer(bad)


class ScriptedPeer:
    """A lane's serving end: the frames a peer sends, then a wait for more (or the end of its
    writing, ``then_end``); it keeps the answers and whether the wait for more was cancelled."""

    def __init__(self, frames: list[bytes], then_end: bool = False, on_answer=None) -> None:
        self._frames, self._then_end, self._on_answer = list(frames), then_end, on_answer
        self.answers: list[bytes] = []
        self.wait_cancelled = False

    async def next(self) -> bytes | None:
        if self._frames:
            return self._frames.pop(0)
        if self._then_end:
            return None
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.wait_cancelled = True
            raise

    async def send(self, frame: bytes) -> None:
        self.answers.append(frame)
        if self._on_answer is not None:
            self._on_answer()


class StuckPeer(ScriptedPeer):
    """A lane's serving end whose peer sends its pushes and never reads an answer."""

    async def send(self, frame: bytes) -> None:
        await asyncio.sleep(3600)  # flow control: the answer never leaves


def test_a_peer_that_never_reads_its_answers_holds_a_lane_at_most_timeout_in_ms():
    async def test(p):
        bob = p["bob"]
        started = now()
        assert await bob.receiver._inbox.on_pushes(StuckPeer([b"garbage"]), link.Caller("memory:alice")) == b""
        assert 0.4 < elapsed(started) < 1.5
        assert bob.receiver._inbox.lanes == 0

    run(test, timeout_in_ms=500)


def test_a_write_that_flow_control_holds_ends_at_the_push_timeout_and_breaks_the_lane():
    async def test(lane, conn):
        conn.blocked = 1
        started = now()
        with pytest.raises(asyncio.TimeoutError):
            await lane.push(b"p0", 0.2)
        assert 0.15 < elapsed(started) < 1 and conn.streams[0].cancelled
        assert await asyncio.gather(lane.push(b"p1", 5), answer_soon(conn, b"ok", 1)) == [b"ok", None]

    lane_case(test)


def test_a_push_cancelled_while_it_is_written_breaks_the_lane_so_answers_cannot_shift():
    async def test(lane, conn):
        conn.blocked = 1
        writing = asyncio.ensure_future(lane.push(b"p0", 5))
        await asyncio.sleep(0.05)
        writing.cancel()
        await asyncio.gather(writing, return_exceptions=True)
        assert conn.streams[0].cancelled  # whether p0 went is unknown: its lane is not used again
        assert await asyncio.gather(lane.push(b"p1", 5), answer_soon(conn, b"ok", 1)) == [b"ok", None]

    lane_case(test)


def test_a_push_given_up_while_it_waits_for_its_answer_does_not_stall_the_lane():
    async def test(lane, conn):
        given_up = asyncio.ensure_future(lane.push(b"p0", 5))
        await asyncio.sleep(0.05)
        given_up.cancel()
        await asyncio.gather(given_up, return_exceptions=True)
        conn.streams[0].answers.put_nowait(b"ok")  # p0's answer: nobody waits for it any more
        started = now()
        assert await asyncio.gather(lane.push(b"p1", 5), answer_soon_after(conn, 1, b"ok")) == [b"ok", None]
        assert elapsed(started) < 1 and len(conn.streams) == 1  # answered on the same lane

    lane_case(test)


async def answer_soon_after(conn: ScriptedConnection, written: int, answer: bytes) -> None:
    while len(conn.streams[-1].written) <= written:
        await asyncio.sleep(0.01)
    conn.streams[-1].answers.put_nowait(answer)


def test_closing_a_lane_fails_what_waits_on_it_at_once_and_ends_its_stream():
    async def test(lane, conn):
        waiting = asyncio.ensure_future(lane.push(b"p0", 5))
        await asyncio.sleep(0.05)
        lane.close()
        with pytest.raises(LinkError) as failed:
            await asyncio.wait_for(waiting, 1)
        assert failed.value.code == "UNAVAILABLE" and conn.streams[0].cancelled

    lane_case(test)


def push_frame(value, object_id: str) -> bytes:
    """A push from alice to bob in one message, as a sender writes it on a lane."""
    segments, copied = codec.encode(value)
    head = wire.encode_header(wire.Header(job="j", src="alice", dst="bob", object_id=object_id,
                                          fingerprint=f"f{object_id}", codec=codec.NAME,
                                          segments=tuple(s.nbytes for s in segments), copied=copied))
    return wire.encode_whole(head, segments)


ALICE = link.Caller("memory:alice")


def test_a_lane_ends_with_no_answer_of_its_own_and_no_read_left_waiting():
    async def test(p):
        inbox = p["bob"].receiver._inbox
        idle = ScriptedPeer([push_frame(1, "1:0")])
        assert await inbox.on_pushes(idle, ALICE) == b""  # no push for timeout_in_ms
        await asyncio.sleep(0)
        assert idle.wait_cancelled and [wire.decode_lane_answer(a)[0] for a in idle.answers] == [b"ok"]
        finished = ScriptedPeer([push_frame(2, "1:1")], then_end=True)
        assert await inbox.on_pushes(finished, ALICE) == b"" and len(finished.answers) == 1
        waiting, other = ScriptedPeer([]), ScriptedPeer([])  # lanes end while two wait for a push
        lane, other_lane = (asyncio.ensure_future(inbox.on_pushes(peer, ALICE)) for peer in (waiting, other))
        await asyncio.sleep(0)
        assert inbox.lanes == 2
        ended = ScriptedPeer([push_frame(3, "1:2")], on_answer=inbox.end_lanes)  # and while one serves a push
        assert await inbox.on_pushes(ended, ALICE) == b"" and len(ended.answers) == 1
        assert await lane == b"" and await other_lane == b""
        await asyncio.sleep(0)
        assert waiting.wait_cancelled and waiting.answers == [] and inbox.lanes == 0
        assert [await p["bob"].receiver.get("alice", f"1:{i}", f"f1:{i}") for i in range(3)] == [1, 2, 3]

    run(test, timeout_in_ms=300)


def test_a_fault_of_the_receiver_on_a_lane_answers_internal_error_only_and_the_lane_goes_on(monkeypatch, caplog):
    async def test(p):
        inbox = p["bob"].receiver._inbox
        served = inbox.on_push_whole
        secret = "secret\x1b[31m"

        async def faulty(request, caller):
            if wire.decode_header(wire.decode_whole(request)[0]).object_id == "1:0":
                raise RuntimeError(secret)
            return await served(request, caller)
        monkeypatch.setattr(inbox, "on_push_whole", faulty)
        peer = ScriptedPeer([push_frame(1, "1:0"), push_frame(2, "1:1")], then_end=True)
        assert await inbox.on_pushes(peer, ALICE) == b""
        answers = [wire.decode_lane_answer(a) for a in peer.answers]
        assert answers[0] == (None, ("INTERNAL", "internal error at the receiver; its log says more", False))
        assert answers[1] == (b"ok", None)
        assert await p["bob"].receiver.get("alice", "1:1", "f1:1") == 2
        assert "memory:alice" in caplog.text and "RuntimeError" in caplog.text  # the log names who and what

    run(test)
