"""The sender: pushes this party's values to peers over the job's link (hosted as ``sender_host`` decides)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from typing import Any, NamedTuple

from fed import _logs as logs
from fed._config import FedConfig
from fed._exceptions import FedSendError, seen_elsewhere
from fed._security import probe
from fed._security.untrusted import clip
from fed._serialization import codec
from fed._transport import link, wire
from fed._transport.lane import LANE_BYTES, Lane
from fed._transport.link import LinkError, ProofError
from fed._transport.metrics import Meter, node_id
from fed._transport.streamed import Window, push_streamed

logger = logging.getLogger("fed.sender")

# A server that does not know a message fed sends: another fed version, or not fed at all.
_UNKNOWN_METHOD = (" (the server there does not take this message: it is not fed, or another version of it; "
                   "every party must run the same fed version)")


class Sent(NamedTuple):
    """What one push sent: payload bytes, and ``fed`` for a value or ``error`` for an error report."""

    nbytes: int
    codec: str

    @property
    def error(self) -> bool:
        """Whether an error report went instead of the value (its task failed)."""
        return self.codec == "error"


# A push is retried for the codes of ``grpc_retry_policy`` (by default ``link.TRANSIENT``), with its
# backoff. While the receiver has no room, the backoff starts here and is capped low, so that
# room is used soon after it frees.
_ROOM_FIRST_DELAY_S = 0.1
_FIRST_PING_S = 1.0
_ROOM_DELAY_MAX_S = 1.0
_ROOM_LOG_EVERY_S = 5.0
# Tries of pushes to one peer that run at once. Thousands of values in flight are thousands of
# pushes: 10,000 at once on one connection failed by the thousand with CANCELLED from inside
# gRPC (tests/integration/test_in_flight.py); queued here, they all go through.
_TRIES_AT_ONCE = 64


def jittered(wait: float) -> float:
    """A wait of between half of ``wait`` and ``wait`` (so that pushes that failed together do not
    all try again together, and no wait is longer than its backoff step says)."""
    return wait * (0.5 + random.random() / 2)


class Ready:
    """A value the driver holds already, pushed as the value of a Ray ObjectRef would be: awaiting
    it (``Sender.send`` does) returns it at once."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self):
        return self.value
        yield  # noqa: B901 - a generator, so that ``await`` takes it


class Sender:
    """Pushes this party's values to its peers in one job, over the job's link."""

    def __init__(self, config: FedConfig) -> None:
        logs.setup(config.logging_level)  # in its own actor process too
        self._config = config
        self._link = link.outbound(config)
        self.meter = Meter(config.job_name, config.party, "sent")
        self._room_logged: dict[str, float] = {}  # peer -> when "no room there" was last logged
        self._tries: dict[str, asyncio.Semaphore] = {}  # per peer: tries of pushes running at once
        self._names_checked: set[str] = set()  # peers whose certificate names were read (``_check_names``)
        self._lanes: dict[str, Lane] = {}  # per peer: the stream its small values go on

    async def ping(self, dst: str) -> None:
        """Wait until ``dst``'s receiver answers (it may start later), up to ``timeout_in_ms``."""
        cfg = self._config
        connection = self._link.connect(dst)
        deadline = time.monotonic() + cfg.comm.timeout_in_ms / 1000
        last: Exception | None = None
        while time.monotonic() < deadline:
            # Short tries until dst's server has shown its certificate: one that does not name dst
            # is found within 2 s of dst's server coming up (gRPC alone would only time out).
            each = _FIRST_PING_S if cfg.tls is not None and dst not in self._names_checked else 5.0
            try:
                answer = await connection.unary(link.PING, wire.encode_ping(cfg.job_name, cfg.party),
                                                timeout=max(0.1, min(each, deadline - time.monotonic())),
                                                wait_for_ready=True)
            except ProofError as exc:
                raise self._impostor(dst, exc) from None
            except LinkError as exc:
                last = exc
                if not exc.transient:
                    break
                await self._check_names(dst)
                await asyncio.sleep(0.2)
                continue
            try:
                who, job, *_ = wire.decode_ping_answer(answer)
            except wire.WireError as exc:
                raise FedSendError(f"{cfg.addresses[dst]} answers pings, but not as a fed receiver: {exc}") from None
            if who != dst or job != cfg.job_name:
                raise FedSendError(
                    f"{cfg.addresses[dst]} answers as party {clip(who, 64)} job {clip(job, 64)}, expected "
                    f"party {dst!r} job {cfg.job_name!r}")
            return
        raise FedSendError(f"party {dst!r} at {cfg.addresses[dst]} did not answer within "
                           f"{cfg.comm.timeout_in_ms} ms: {last}")

    async def _check_names(self, dst: str) -> None:
        """With TLS, after a failed try: ``FedSendError`` at once if ``dst``'s server presents a
        certificate that does not carry the name fed expects (gRPC only keeps retrying)."""
        tls = self._config.tls
        if tls is None or dst in self._names_checked:
            return
        address = self._config.addresses[dst]
        names = await self._link.presented_names(dst)
        if names is None:
            return  # not up yet, or not TLS at all: the next failure looks again
        self._names_checked.add(dst)
        if tls.name_of(dst) not in names:
            raise FedSendError(probe.mismatch(dst, address, tls.name_of(dst), names))

    def _impostor(self, dst: str, exc: ProofError) -> FedSendError:
        return FedSendError(f"the server at {self._config.addresses[dst]} is not party {dst!r}: {exc}. Nothing "
                            "of this party's values was sent to it")

    async def send(self, dst: str, object_id: str, fingerprint: str, wrapped: list) -> Sent:
        """Push the value of ``wrapped[0]`` (a Ray ObjectRef, or ``Ready``) to ``dst``; returns what was sent.

        A value whose task failed is pushed as an error frame, so the peer raises instead of waiting.
        """
        cfg = self._config
        unencodable, copied = None, ()
        try:
            value = await wrapped[0]
        except Exception as exc:  # noqa: BLE001 - the producing task failed: tell the peer
            codec_name, segments = "error", [memoryview(self._error_frame(exc))]
        else:
            try:
                segments, copied = codec.encode(value, cfg.types, by_value=cfg.comm.allow_unsafe_deserialization)
                codec_name = codec.NAME
            except codec.EncodeError as exc:
                why = f"value {object_id} ({fingerprint}) cannot be sent to {dst!r}"
                unencodable = FedSendError(f"{why}: {exc}")
                told = unencodable if cfg.comm.expose_error_trace else FedSendError(f"{why}: {exc.public}")
                codec_name, segments = "error", None
        header = wire.Header(job=cfg.job_name, src=cfg.party, dst=dst, object_id=object_id,
                             fingerprint=fingerprint, codec=codec_name,
                             segments=tuple(s.nbytes for s in segments or ()) or (0,), copied=copied)
        if codec_name == codec.NAME and header.total_size > LANE_BYTES and self._link.streams:
            header = dataclasses.replace(header, compression=cfg.compression_for(dst))
        limit = cfg.comm.messages_max_size_in_bytes
        ready = time.monotonic()
        if unencodable is not None:  # the peer is told instead, so it does not wait for the value
            self.meter.add(dst, refusals=1, failures=1)
            await self._push(dst, *self._error_notice(header, told))
            raise unencodable
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
                await self._send_whole(dst, notice, error, max(0.1, deadline - time.monotonic()),
                                       Window(0))
                return
            except LinkError as failed:
                if not failed.transient:  # e.g. it already holds an error for the value
                    return
            except (asyncio.TimeoutError, ProofError):
                return
            await asyncio.sleep(0.1)

    async def _push(self, dst: str, header: wire.Header, segments: list[memoryview]) -> None:
        """Send one value; retry transient failures until ``timeout_in_ms`` passes without progress.

        A value that fits in one chunk goes as one unary call (without TLS: with TLS the server must
        prove who it is before the value goes, see ``link``). A larger one, and one compressed for
        ``dst`` (``compression_for``: values over ``LANE_BYTES``), is streamed: the receiver
        acknowledges every chunk and at most ``inflight_window_in_bytes`` are unacknowledged, which
        bounds the memory a push holds. There is no deadline on a whole transfer: a large value on a
        slow but live link goes on as long as acknowledgements keep coming. A receiver that has no
        room until its program consumes values (``LinkError.no_room``) is live too: the push waits for it.
        """
        cfg = self._config
        policy = cfg.comm.grpc_retry_policy
        patience = cfg.comm.timeout_in_ms / 1000
        whole = header.compression is None and (header.total_size <= cfg.comm.chunk_size_in_bytes
                                                or not self._link.streams)
        attempt = self._send_whole if whole else self._send_streamed
        window = Window(cfg.comm.inflight_window_in_bytes)
        answered = time.monotonic()  # the receiver's last sign of life: start, ack, or "no room"
        delay, room_delay = policy.initial_backoff_s, _ROOM_FIRST_DELAY_S
        failed_tries = 0  # tries that failed (not counting "no room": that receiver is live)
        while True:
            try:
                async with self._turns(dst):
                    await attempt(dst, header, segments, patience, window)
                return
            except LinkError as exc:
                error, no_room = str(exc), exc.no_room
                if exc.code not in policy.retryable and not no_room:
                    self.meter.add(dst, refusals=1)
                    raise FedSendError(f"could not push {header.object_id} ({header.fingerprint}) to "
                                       f"party {dst!r} at {cfg.addresses[dst]}: {error}"
                                       f"{_UNKNOWN_METHOD if exc.code == 'UNIMPLEMENTED' else ''}") from None
            except asyncio.TimeoutError:
                error, no_room = f"no progress for {patience:g} s", False
            except ProofError as exc:
                self.meter.add(dst, refusals=1)
                raise self._impostor(dst, exc) from None
            window.eager = False  # from now on a try asks to resume and sends data only once admitted
            if no_room:
                answered = time.monotonic()
                self._tell_no_room(dst, error)
                wait, room_delay = room_delay, min(room_delay * 2, _ROOM_DELAY_MAX_S)
            else:
                failed_tries += 1
                if failed_tries == 1:
                    await self._check_names(dst)
                if policy.max_attempts is not None and failed_tries >= policy.max_attempts:
                    raise FedSendError(f"could not push {header.object_id} ({header.fingerprint}) to party "
                                       f"{dst!r} at {cfg.addresses[dst]}: {error} (gave up after {failed_tries} "
                                       f"tries: grpc_retry_policy maxAttempts={policy.max_attempts})")
                if time.monotonic() - max(answered, window.last_progress) + delay > patience:
                    hint = (f"; with TLS, also check that the server there presents a certificate naming "
                            f"{dst!r} from your CA") if cfg.tls is not None else ""
                    raise FedSendError(f"could not push {header.object_id} ({header.fingerprint}) to party "
                                       f"{dst!r} at {cfg.addresses[dst]}: {error} "
                                       f"(timeout_in_ms={cfg.comm.timeout_in_ms}){hint}")
                logger.info("push of %s to %s failed (%s); retrying", header.object_id, dst, error)
                wait, delay = delay, min(delay * policy.multiplier, policy.max_backoff_s)
            self.meter.add(dst, retries=1)
            await asyncio.sleep(jittered(wait))

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
                          patience: float, window: Window) -> None:
        """A value in one message: a small one on the peer's lane (``lane``), a larger one as a
        call of its own (streamed with TLS: the value goes only after the server's proof)."""
        head = wire.encode_header(header)
        if self._link.streams and 4 + len(head) + header.total_size <= LANE_BYTES:
            lane = self._lanes.get(dst)
            if lane is None:
                lane = self._lanes[dst] = Lane(self._link.connect(dst))
            await lane.push(wire.encode_whole(head, segments), patience)
        elif self._config.tls is not None and self._link.streams:
            await self._send_streamed(dst, header, segments, patience, window)
        else:
            await self._link.connect(dst).unary(link.PUSH_WHOLE, wire.encode_whole(head, segments), patience,
                                                wait_for_ready=True)

    async def _send_streamed(self, dst: str, header: wire.Header, segments: list[memoryview],
                             patience: float, window: Window) -> None:
        comm = self._config.comm
        await push_streamed(self._link.connect(dst), dst, header, segments, comm.chunk_size_in_bytes, patience,
                            window, comm.compression_level)

    def _error_notice(self, header: wire.Header, exc: FedSendError) -> tuple[wire.Header, list[memoryview]]:
        """The push that tells the peer ``exc`` happened instead of the value ``header`` describes:
        fed's own message about the delivery, which holds nothing of the task's data, so it is sent
        whatever ``expose_error_trace`` says."""
        error = memoryview(wire.encode_error(self._config.party, type(exc).__name__, str(exc)))
        notice = dataclasses.replace(header, codec="error", segments=(error.nbytes,), copied=(), compression=None)
        return notice, [error]

    def _error_frame(self, exc: BaseException) -> bytes:
        seen = seen_elsewhere(exc, self._config.party, self._config.comm.expose_error_trace)
        return wire.encode_error(seen.src_party, seen.error_type, seen.cause)

    async def bye(self, dst: str, kind: str, error_type: str = "", cause: str | None = None) -> bool:
        """Tell ``dst`` this party sends nothing more (its program ``finished`` or ``aborted``).

        One try of at most two seconds: a peer that does not answer is gone already or will
        notice this party is gone by its pings. Returns whether ``dst`` took it.
        """
        cfg = self._config
        try:
            request = wire.encode_bye(cfg.job_name, cfg.party, kind, error_type, cause)
            await self._link.connect(dst, link.CONTROL).gated(link.BYE, request, timeout=2.0)
        except LinkError as exc:
            logger.info("could not say goodbye to %s: %s", dst, clip(str(exc), 300))
            return False
        except ProofError as exc:
            logger.warning("did not say goodbye to %s: %s", dst, self._impostor(dst, exc))
            return False
        return True

    async def stop(self) -> None:
        """Close every lane and connection; what the Ray metrics have not been given yet goes to them now."""
        for lane in self._lanes.values():
            lane.close()
        await self._link.close()
        self.meter.mirror()
