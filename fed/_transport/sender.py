"""The sender: pushes this party's values to peers over gRPC (hosted as ``sender_host`` decides)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from typing import Any, NamedTuple

import grpc

from fed._config import FedConfig
from fed._exceptions import FedSendError, seen_elsewhere
from fed._serialization import codec
from fed._transport import grpc_setup, wire
from fed._transport.metrics import Meter, Progress, node_id

logger = logging.getLogger("fed.sender")


class Sent(NamedTuple):
    """What one push sent: payload bytes, and ``pickle5`` for a value or ``error`` for an error report."""

    nbytes: int
    codec: str


# Failures that mean "the peer is not reachable right now": worth another try. A connection cut in
# the middle of a stream surfaces as INTERNAL ("Internal error from Core") in grpc aio.
_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}
# Backoff between tries: after a failure, and (capped lower, so that room is used soon after it
# frees) while the receiver has no room.
_FIRST_DELAY_S = 0.1
_DELAY_MAX_S = 5.0
_ROOM_DELAY_MAX_S = 1.0
_ROOM_LOG_EVERY_S = 5.0
# Tries of pushes to one peer that run at once. Thousands of values in flight are thousands of
# pushes: 10,000 at once on one connection failed by the thousand with CANCELLED from inside
# gRPC (tests/integration/test_in_flight.py); queued here, they all go through.
_TRIES_AT_ONCE = 64


class Sender:
    """Holds one gRPC channel per peer for one job and pushes values over it."""

    def __init__(self, config: FedConfig) -> None:
        self._config = config
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._metadata = tuple((k.lower(), v) for k, v in (config.comm.http_header or {}).items())
        self.meter = Meter(config.job_name, config.party, "sent")
        self._room_logged: dict[str, float] = {}  # peer -> when "no room there" was last logged
        self._tries: dict[str, asyncio.Semaphore] = {}  # per peer: tries of pushes running at once

    def _channel(self, dst: str) -> grpc.aio.Channel:
        channel = self._channels.get(dst)
        if channel is None:
            cfg = self._config
            channel = grpc_setup.open_channel(cfg.addresses[dst], dst, cfg.tls, cfg.comm.chunk_size_in_bytes)
            self._channels[dst] = channel
        return channel

    async def ping(self, dst: str) -> None:
        """Wait until ``dst``'s receiver answers (it may start later), up to ``timeout_in_ms``."""
        cfg = self._config
        call = self._channel(dst).unary_unary(wire.PING_METHOD)
        deadline = time.monotonic() + cfg.comm.timeout_in_ms / 1000
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                answer = await call(wire.encode_ping(cfg.job_name, cfg.party),
                                    timeout=max(0.1, min(5.0, deadline - time.monotonic())),
                                    wait_for_ready=True)
            except grpc.aio.AioRpcError as exc:
                last = exc
                if exc.code() not in _TRANSIENT:
                    break
                await asyncio.sleep(0.2)
                continue
            body = wire.decode_json(answer, "ping answer")
            if body.get("party") != dst or body.get("job") != cfg.job_name:
                raise FedSendError(
                    f"{cfg.addresses[dst]} answers as party {body.get('party')!r} job "
                    f"{body.get('job')!r}, expected party {dst!r} job {cfg.job_name!r}")
            return
        raise FedSendError(f"party {dst!r} at {cfg.addresses[dst]} did not answer within "
                           f"{cfg.comm.timeout_in_ms} ms: {_describe(last)}")

    async def send(self, dst: str, object_id: str, fingerprint: str, wrapped: list) -> Sent:
        """Push the value of ``wrapped[0]`` (a Ray ObjectRef) to ``dst``; returns what was sent.

        A value whose task failed is pushed as an error frame, so the peer raises instead of waiting.
        """
        cfg = self._config
        try:
            value = await wrapped[0]
        except Exception as exc:  # noqa: BLE001 - the producing task failed: tell the peer
            codec_name, segments = "error", [memoryview(self._error_frame(exc))]
        else:
            codec_name, segments = "pickle5", codec.encode(value)
        header = wire.Header(job=cfg.job_name, src=cfg.party, dst=dst, object_id=object_id,
                             fingerprint=fingerprint, codec=codec_name,
                             segments=tuple(s.nbytes for s in segments))
        limit = cfg.comm.messages_max_size_in_bytes
        ready = time.monotonic()
        if header.total_size > limit:
            self.meter.add(dst, refusals=1, failures=1)
            too_big = FedSendError(f"value {object_id} ({fingerprint}) is {header.total_size} bytes, over "
                                  f"messages_max_size_in_bytes={limit}; it was not sent to {dst!r}")
            await self._push(dst, *self._error_notice(header, too_big))
            raise too_big
        try:
            await self._push(dst, header, segments)
        except FedSendError as exc:
            self.meter.add(dst, failures=1)
            await self._tell_failure(dst, header, exc)
            raise
        self.meter.add(dst, values=1, bytes=header.total_size)
        self.meter.took(dst, time.monotonic() - ready)
        return Sent(header.total_size, codec_name)

    async def stats(self) -> dict[str, Any]:
        """What this sender pushed, per peer (see ``metrics``), and the Ray node it runs on."""
        return {"peers": self.meter.snapshot(), "node": node_id()}

    async def _tell_failure(self, dst: str, header: wire.Header, exc: FedSendError) -> None:
        """One short try to tell ``dst`` the value will not come, so it does not wait for it.

        Often ``dst`` cannot be reached at all (that is why the push failed); then its liveness
        pings tell it this party is gone, or this party's goodbye does.
        """
        notice, error = self._error_notice(header, exc)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                await self._send_whole(dst, notice, error, max(0.1, deadline - time.monotonic()), _Window(0))
                return
            except grpc.aio.AioRpcError as rpc_error:
                if rpc_error.code() not in _TRANSIENT:  # e.g. it already holds an error for the value
                    return
            except asyncio.TimeoutError:
                return
            await asyncio.sleep(0.1)

    async def _push(self, dst: str, header: wire.Header, segments: list[memoryview]) -> None:
        """Send one value; retry transient failures until ``timeout_in_ms`` passes without progress.

        A value that fits in one chunk goes as one unary call. A larger one is streamed: the receiver
        acknowledges every chunk and at most ``inflight_window_in_bytes`` are unacknowledged, which
        bounds the memory a push holds. There is no deadline on a whole transfer: a large value on a
        slow but live link goes on as long as acknowledgements keep coming. A receiver that has no
        room until its program consumes values (``wire.NO_ROOM``) is live too: the push waits for it.
        """
        cfg = self._config
        patience = cfg.comm.timeout_in_ms / 1000
        whole = header.total_size <= cfg.comm.chunk_size_in_bytes
        attempt = self._send_whole if whole else self._send_streamed
        window = _Window(cfg.comm.inflight_window_in_bytes)
        answered = time.monotonic()  # the receiver's last sign of life: start, ack, or "no room"
        delay = room_delay = _FIRST_DELAY_S
        while True:
            try:
                async with self._turns(dst):
                    await attempt(dst, header, segments, patience, window)
                return
            except grpc.aio.AioRpcError as exc:
                error, no_room = _describe(exc), wire.is_no_room(exc.trailing_metadata())
                if exc.code() not in _TRANSIENT:
                    self.meter.add(dst, refusals=1)
                    raise FedSendError(f"could not push {header.object_id} ({header.fingerprint}) to "
                                       f"party {dst!r} at {cfg.addresses[dst]}: {error}") from None
            except asyncio.TimeoutError:
                error, no_room = f"no progress for {patience:g} s", False
            if no_room:
                answered = time.monotonic()
                self._tell_no_room(dst, error)
                wait, room_delay = room_delay, min(room_delay * 2, _ROOM_DELAY_MAX_S)
            else:
                if time.monotonic() - max(answered, window.last_progress) + delay > patience:
                    hint = (f"; with TLS, also check that the server there presents a certificate naming "
                            f"{dst!r} from your CA") if cfg.tls is not None else ""
                    raise FedSendError(f"could not push {header.object_id} ({header.fingerprint}) to party "
                                       f"{dst!r} at {cfg.addresses[dst]}: {error} "
                                       f"(timeout_in_ms={cfg.comm.timeout_in_ms}){hint}")
                logger.info("push of %s to %s failed (%s); retrying", header.object_id, dst, error)
                wait, delay = delay, min(delay * 2, _DELAY_MAX_S)
            self.meter.add(dst, retries=1)
            await asyncio.sleep(wait * (1 + random.random()))

    def _turns(self, dst: str) -> asyncio.Semaphore:
        """At most ``_TRIES_AT_ONCE`` tries of pushes to ``dst`` run at once; the others queue here,
        in order. A push waiting to try again (backoff, no room) holds no turn, so the value a
        peer waits for is never stuck behind values that wait for room there."""
        turns = self._tries.get(dst)
        if turns is None:
            turns = self._tries[dst] = asyncio.Semaphore(_TRIES_AT_ONCE)
        return turns

    def _tell_no_room(self, dst: str, error: str) -> None:
        """Log that pushes to ``dst`` wait for room there: once every few seconds per peer, not per push."""
        now = time.monotonic()
        if now - self._room_logged.get(dst, -_ROOM_LOG_EVERY_S) >= _ROOM_LOG_EVERY_S:
            self._room_logged[dst] = now
            logger.info("pushes to %s wait for room there (%s)", dst, error)

    async def _send_whole(self, dst: str, header: wire.Header, segments: list[memoryview],
                          patience: float, window: _Window) -> None:
        request = wire.encode_whole(wire.encode_header(header), segments)
        call = self._channel(dst).unary_unary(wire.PUSH_WHOLE_METHOD)
        await call(request, timeout=patience, wait_for_ready=True, metadata=self._metadata)

    async def _send_streamed(self, dst: str, header: wire.Header, segments: list[memoryview],
                             patience: float, window: _Window) -> None:
        window.restart()
        frames = _frames(wire.encode_header(header), segments, self._config.comm.chunk_size_in_bytes, window)
        rpc = self._channel(dst).stream_stream(wire.PUSH_METHOD)(frames, wait_for_ready=True,
                                                                metadata=self._metadata)
        progress = Progress(f"push of {header.object_id} ({header.fingerprint}) to {dst}", header.total_size)
        try:
            await _follow(rpc, window, patience, progress)
        except asyncio.TimeoutError:
            rpc.cancel()
            raise

    def _error_notice(self, header: wire.Header, exc: BaseException) -> tuple[wire.Header, list[memoryview]]:
        """The push that tells the peer ``exc`` happened instead of the value ``header`` describes."""
        error = memoryview(self._error_frame(exc))
        return dataclasses.replace(header, codec="error", segments=(error.nbytes,)), [error]

    def _error_frame(self, exc: BaseException) -> bytes:
        seen = seen_elsewhere(exc, self._config.party, self._config.comm.expose_error_trace)
        return json.dumps({"party": seen.src_party, "type": seen.error_type, "cause": seen.cause}).encode()

    async def bye(self, dst: str, kind: str, error_type: str = "", cause: str | None = None) -> bool:
        """Tell ``dst`` this party sends nothing more (its program ``finished`` or ``aborted``).

        One try of at most two seconds: a peer that does not answer is gone already or will
        notice this party is gone by its pings. Returns whether ``dst`` took it.
        """
        cfg = self._config
        call = self._channel(dst).unary_unary(wire.BYE_METHOD)
        try:
            await call(wire.encode_bye(cfg.job_name, cfg.party, kind, error_type, cause), timeout=2.0,
                       metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            logger.info("could not say goodbye to %s: %s", dst, _describe(exc))
            return False
        return True

    async def stop(self) -> None:
        """Close every channel."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


class _Window:
    """Bytes sent but not yet acknowledged by the receiver, capped at ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.acked = 0
        self.last_progress = 0.0  # monotonic time of the last ack, over every attempt
        self._moved = asyncio.Event()
        self._admitted = asyncio.Event()

    def restart(self) -> None:
        """A new attempt: nothing sent or acknowledged, the receiver has not admitted the push yet."""
        self.sent = self.acked = 0
        self._admitted.clear()

    async def reserve(self, n: int) -> None:
        """Wait until ``n`` more bytes fit (a chunk larger than the window goes alone).

        No data goes before the receiver admits the push (its first ack), so a refusal of the
        header reaches the sender as the receiver's status, not as a broken stream.
        """
        await self._admitted.wait()
        while self.sent - self.acked > 0 and self.sent - self.acked + n > self.size:
            self._moved.clear()
            await self._moved.wait()
        self.sent += n

    def ack(self, received: int) -> None:
        self.acked = received
        self.last_progress = time.monotonic()
        self._admitted.set()
        self._moved.set()


async def _frames(head: bytes, segments: list[memoryview], chunk_size: int, window: _Window):
    yield head
    for chunk in wire.iter_payload(segments, chunk_size):
        await window.reserve(len(chunk))
        yield chunk


async def _follow(rpc: grpc.aio.StreamStreamCall, window: _Window, patience: float, progress: Progress) -> bytes:
    """Read acks until the final answer; ``asyncio.TimeoutError`` after ``patience`` s without a message."""
    while True:
        message = await asyncio.wait_for(rpc.read(), patience)
        if message is grpc.aio.EOF:
            raise FedSendError("the receiver closed the push without an answer")
        acked = wire.decode_ack(message)
        if acked is None:
            return message
        window.ack(acked)
        progress.update(acked)


def _describe(exc: Exception | None) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)

