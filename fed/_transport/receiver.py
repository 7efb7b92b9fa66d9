"""The receiver: a Ray actor serving peers' pushes over the job's link and handing values to this party."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from typing import Any

import numpy as np
import ray

from fed import _logs as logs
from fed._config import FedConfig
from fed._exceptions import FedDivergenceError, FedError, FedRemoteError
from fed._security.untrusted import clip
from fed._serialization import codec
from fed._serialization.policy import make_policy
from fed._transport import link, wire
from fed._transport.admission import check_header, check_source, describe, holding_cost
from fed._transport.awaited import Awaited
from fed._transport.call_log import CallLog
from fed._transport.link import Caller, InStream, Refusal, Refused
from fed._transport.liveness import Gone, PeerWatch, calls_answer, gone_error, ping_answer
from fed._transport.mailbox import Arrived, Mailbox, NoRoom
from fed._transport.metrics import Meter, node_id
from fed._transport.pushed import Pushed

logger = logging.getLogger("fed.receiver")

# The receiver actor's Ray concurrency: no limit in practice. Its calls from the driver wait for
# values; were they queued, the values they wait for could be refused for lack of room (held by
# values whose calls are queued), and the control calls (stats, stop) would queue behind them.
# A waiting call costs about 50 KB of the actor's memory whatever this number is.
CONCURRENCY = 1_000_000
# Threads that decode values: a slow decode (a large value, a user's from_wire) runs beside the
# event loop, which keeps serving other pushes, pings and control calls. Decoding works in steps
# of at most one record (``fed._serialization.records``), so the loop gets its turn between them.
# Each peer has at most DECODERS_PER_PEER of the threads at once, so one peer's slow values never
# hold up another's.
DECODERS_PER_PEER = 2


def _restarted() -> bool:
    """Whether Ray restarted this receiver actor (``proxy_max_restarts``) rather than creating it."""
    if not ray.is_initialized():
        return False
    try:
        return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:  # noqa: BLE001 - not in an actor (a receiver made directly, in tests)
        return False


class Receiver:
    """Serves the party's listening address for one job (the ``link.Inbox`` of its link).

    Values are kept in a ``Mailbox`` under ``(source party, object id)`` until this party asks for
    them with ``get`` or ``get_many``; a second push of a key is acknowledged as a duplicate and
    dropped. A push the mailbox has no room for is refused as busy with ``no_room``, which the
    sender retries for as long as it gets that answer, so an honest peer waits while a flood of
    values nobody consumes stops at the cap.
    """

    def __init__(self, config: FedConfig) -> None:
        logs.setup(config.logging_level)  # in its own actor process too
        self._config = config
        comm = config.comm
        self._policy = make_policy(config.types, comm.serializing_allowed_list, comm.allow_unsafe_deserialization)
        self._decoders = concurrent.futures.ThreadPoolExecutor(DECODERS_PER_PEER * max(1, len(config.peers)),
                                                               thread_name_prefix="fed-decode")
        self._decoding = {peer: asyncio.Semaphore(DECODERS_PER_PEER) for peer in config.peers}
        self._meter = Meter(config.job_name, config.party, "received")
        self._box = Mailbox(config.party, comm.max_buffered_bytes, comm.max_wait_in_ms, self._meter)
        self._calls = CallLog()  # this party's calls, as far as its driver has shared them
        self._pushed = Pushed()  # and its pushes
        self._awaited = Awaited(config.party, self._box)  # and when it asked for what it waits for
        self._outcomes: dict[str, asyncio.Future] = {}  # fed.send's pushes -> whether delivered
        self._peers = PeerWatch(config, self._calls, self._peer_gone, self._awaited.oldest,
                                self._awaited.will_not_come)
        self._server: link.Server | None = None
        self._refused = 0  # pushes and requests refused, from any peer
        self._calls_gap_logged = False
        if _restarted():  # proxy_max_restarts: Ray made this actor again after its process died
            try:
                self._restart = asyncio.get_running_loop().create_task(self._serve_again())
            except RuntimeError:  # a Ray that runs constructors outside the actor's event loop
                logger.error("the receiver of party %r was restarted but cannot listen again on this Ray "
                             "version; the job's pushes to it will fail", config.party)

    async def _serve_again(self) -> None:
        """After a restart: listen again. What the dead receiver held is lost (its waits failed
        with the actor), and the calls the driver shared are unknown here, so comparing calls
        with the peers and telling them which values will not come stay off until the job ends."""
        try:
            await self.start()
        except Exception as exc:  # noqa: BLE001 - nothing else would report it
            logger.error("the restarted receiver of party %r cannot listen again: %s", self._config.party, exc)
            return
        logger.warning("the receiver of party %r was restarted (proxy_max_restarts) and listens again on %s; "
                       "values it held before are lost", self._config.party, self._config.listen_address)

    def pid(self) -> int:
        """The receiver's process (for operators, and tests that kill it)."""
        return os.getpid()

    async def start(self) -> str:
        """Bind the listening address and serve; a taken port is an ``OSError``, never shared."""
        self._server = await link.serve(self._config, self)
        return self._config.listen_address

    async def stop(self, grace: float = 1.0) -> None:
        """Stop serving; pending waits for values fail."""
        await self._peers.stop()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self._box.close()
        self._decoders.shutdown(wait=False, cancel_futures=True)

    async def get(self, src: str, object_id: str, fingerprint: str, asked_at: int | None = None) -> Any:
        """Wait for the value ``src`` pushes under ``object_id`` and return it (once). ``asked_at``:
        how many calls this party's program had made when it asked (``fed._transport.pushed``)."""
        key = (src, object_id)
        box = self._box
        if box.was_taken(key):
            raise RuntimeError(f"value {object_id} from {src!r} was already handed out")
        if not box.has(key):
            gone = self._peers.gone(src)
            if gone is not None:
                raise gone_error(self._config.party, src, gone, object_id, fingerprint)
            if asked_at is not None:
                self._awaited.asked(key, asked_at)
            self._peers.watch(src, lambda: box.waits_for(src))
        try:
            arrived = await box.take(key, fingerprint)
        finally:
            self._awaited.done(key)
        if arrived.fingerprint != fingerprint:
            raise FedDivergenceError(
                f"party {src!r} sent value {object_id} for call {arrived.fingerprint!r}, but this "
                f"party's program made call {fingerprint!r} there: the parties' programs diverged"
            )
        if arrived.error is not None:
            raise arrived.error
        return arrived.value

    async def get_many(self, wanted: list[tuple[str, str, str, int]]) -> list[Any]:
        """``get`` of several values in one Ray call (the driver asks so for the values one call
        consumes): their values in order, or the first error as soon as it comes."""
        takes = [asyncio.ensure_future(self.get(*w)) for w in wanted]
        for take in takes:
            take.add_done_callback(_retrieved)  # errors after the first are not worth a warning
        return list(await asyncio.gather(*takes))

    def _peer_gone(self, party: str) -> None:
        """``party`` will send nothing more: every wait on it ends with an error that says why."""
        gone = self._peers.gone(party)
        for (src, object_id), fingerprint in list(self._box.waiting.items()):
            if src == party:
                self._box.deliver((src, object_id), Arrived(
                    fingerprint, error=gone_error(self._config.party, src, gone, object_id, fingerprint)))

    async def sent(self, token: str) -> bool:
        """How the driver's ``fed.send`` push ``token`` ended (True: delivered), once it reports it:
        ``fed.send`` returns this call's ObjectRef, as RayFed's does."""
        slot = self._outcomes.setdefault(token, asyncio.get_running_loop().create_future())
        try:
            return await slot
        finally:
            self._outcomes.pop(token, None)

    async def report_sent(self, token: str, delivered: bool) -> None:
        slot = self._outcomes.setdefault(token, asyncio.get_running_loop().create_future())
        if not slot.done():
            slot.set_result(delivered)

    async def settle(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the values this party asked for; how many never came."""
        return await self._box.settle(timeout)

    def heard_from(self, parties: list[str]) -> list[str]:
        """Which of ``parties`` have reached this party: pinged it, pushed to it or said goodbye."""
        return [party for party in parties if self._peers.has_seen(party)]

    def peers_started(self, parties: list[str]) -> None:
        """These peers answered at ``fed.init``: from now on, silence for ``liveness_timeout_in_ms`` is loss."""
        for party in parties:
            self._peers.seen(party)

    def counts(self) -> dict[str, int]:
        """Pushes taken so far (values stored, duplicates dropped) and payload bytes buffered now."""
        peers = self._meter.snapshot().values()
        return {"values": sum(p["values"] for p in peers), "duplicates": sum(p["duplicates"] for p in peers),
                "buffered_bytes": self._box.held_bytes}

    def stats(self) -> dict[str, Any]:
        """What this receiver took, per peer; what it refused; what it holds that was not consumed
        yet (values received or being received, and what they cost); how many values the program
        waits for that have not arrived."""
        return {"peers": self._meter.snapshot(), "refused": self._refused,
                "waiting_values": self._box.held_values, "waiting_bytes": self._box.held_bytes,
                "waiting_peak": self._box.peak_bytes, "awaited": len(self._box.waiting),
                "node": node_id()}

    def _refuse(self, refused: Refused, caller: Caller) -> Refused:
        """Count and log a refused message (bounded, escaped); the link ends its call with fed's own words."""
        self._refused += 1
        if refused.no_room:
            logger.info("asked %s to wait: %s", clip(caller.address, 100), refused.public)
        else:
            logger.warning("refused a call from %s: %s", clip(caller.address, 100), clip(str(refused), 600))
        return refused

    def record_calls(self, start: int, digests: bytes, fingerprints: list[str],
                     started: list[tuple[str, str]] = (), failed: list[tuple[str, str]] = ()) -> None:
        """The driver shares the calls its program made since it last did (see ``call_log``), and
        the pushes it started or that failed (``pushed``): the pushes first, as they were made first."""
        self._pushed.add(started, failed)
        try:
            self._calls.extend(start, digests, fingerprints)
        except ValueError as exc:  # a restarted receiver: the calls before its restart are unknown here
            if not self._calls_gap_logged:
                logger.warning("%s; comparing calls with the peers is off from now on", exc)
                self._calls_gap_logged = True

    async def on_ping(self, request: bytes, caller: Caller) -> bytes:
        try:
            job, src, theirs, waits = _control(wire.decode_ping, request)
            check_source(self._config, job, src, caller.names)
            self._peers.seen(src)
            return ping_answer(self._config, self._calls, theirs, self._pushed.will_not_come(src, waits,
                                                                                              len(self._calls)))
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    async def on_calls(self, request: bytes, caller: Caller) -> bytes:
        try:
            job, src, upto, call = _control(wire.decode_calls_request, request)
            check_source(self._config, job, src, caller.names)
            answer = calls_answer(self._calls, upto, call)
            if answer is None:
                raise Refused(Refusal.MALFORMED, "calls request out of range")
            return answer
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    async def on_bye(self, stream: InStream, caller: Caller) -> bytes:
        """A peer will send nothing more in this job (its program finished or aborted). One message,
        on a gated call so that it goes only after this party's proof (``link``)."""
        try:
            request = await _next_frame(stream, self._patience)
            if request is None:
                raise Refused(Refusal.MALFORMED, "empty goodbye")
            job, src, kind, error_type, cause = _control(wire.decode_bye, request)
            check_source(self._config, job, src, caller.names)
            self._peers.seen(src)
            self._peers.mark_gone(src, Gone(kind, error_type, cause))
            return b"ok"
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    async def on_push(self, stream: InStream, caller: Caller) -> bytes:
        try:
            first = await _next_frame(stream, self._patience)
            if first is None:
                raise Refused(Refusal.MALFORMED, "empty push: no header frame")
            header = self._admit(first, caller)
            if header is None:
                return b"duplicate"
            try:
                await stream.send(wire.encode_ack(0))  # admitted: the sender may send data now
                payload = await _assemble(stream, header.total_size, self._patience)
                return await self._store(header, payload)
            except BaseException:
                self._box.release((header.src, header.object_id))
                raise
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    async def on_push_whole(self, request: bytes, caller: Caller) -> bytes:
        try:
            head, payload = _control(wire.decode_whole, request)
            header = self._admit(head, caller)
            if header is None:
                return b"duplicate"
            try:
                if len(payload) != header.total_size:
                    raise Refused(Refusal.MALFORMED,
                                  f"payload of {len(payload)} bytes, the header declares {header.total_size}")
                return await self._store(header, payload)
            except BaseException:
                self._box.release((header.src, header.object_id))
                raise
        except Refused as refused:
            raise self._refuse(refused, caller) from None

    @property
    def _patience(self) -> float:
        """Seconds a push may go without a frame before it gives back what it holds."""
        return self._config.comm.timeout_in_ms / 1000

    def _admit(self, frame: bytes, caller: Caller) -> wire.Header | None:
        """The push's header if this party takes it, None for a duplicate; else ``Refused``.

        A taken push holds what it costs (``holding_cost``: payload, decoded growth, header, slot)
        until its value is handed out or the push fails (``Mailbox.release``).
        """
        header = _control(wire.decode_header, frame)
        check_header(self._config, header, caller.names)
        self._peers.seen(header.src)
        key = (header.src, header.object_id)
        if self._box.has(key):
            logger.info("duplicate push of %s from %s dropped", describe(header), header.src)
            self._meter.add(header.src, duplicates=1)
            return None
        if self._box.receiving(key):
            raise Refused(Refusal.BUSY, "a push of this value is already being received")
        try:
            self._box.reserve(key, holding_cost(header, len(frame)))
        except NoRoom as exc:
            raise Refused(Refusal.BUSY if exc.now else Refusal.TOO_LARGE, str(exc), no_room=exc.now) from None
        return header

    async def _store(self, header: wire.Header, payload: memoryview) -> bytes:
        """Decode the value (on a decoding thread) and hand it to whoever waits for it."""
        key = (header.src, header.object_id)
        try:
            async with self._decoding[header.src]:
                arrived = await asyncio.get_running_loop().run_in_executor(self._decoders, self._decode, header,
                                                                           payload)
        except Refused as refused:
            # If this party waits for the value, it is told why it will never come. Otherwise
            # nothing is kept: a peer cannot fill the mailbox with refusals.
            if key in self._box.waiting:
                self._box.deliver(key, Arrived(header.fingerprint, error=FedError(
                    f"value {describe(header)} from party {header.src!r} was refused: {refused}")))
            raise
        self._box.deliver(key, arrived)
        self._meter.add(header.src, values=1, bytes=header.total_size)
        return b"ok"

    def _decode(self, header: wire.Header, payload: memoryview) -> Arrived:
        """The value (or remote error) a payload holds; ``Refused`` if it is not one this party takes."""
        segments = wire.split_payload(payload, header.segments)
        if header.codec == "error":
            if len(segments) != 1:
                raise Refused(Refusal.MALFORMED, "malformed error frame: one segment expected")
            party, kind, cause = _control(wire.decode_error, segments[0])
            return Arrived(header.fingerprint, error=FedRemoteError(party, kind, cause))
        try:
            value = codec.decode(segments, self._policy, header.copied)
        except codec.DecodeError as exc:
            raise Refused(Refusal.MALFORMED, f"value refused: {exc}", exc.detail) from None
        return Arrived(header.fingerprint, value=value)


def _control(decode, request: bytes):
    """A frame decoded by ``decode``; a malformed one is ``Refused`` (its text names what was wrong)."""
    try:
        return decode(request)
    except wire.WireError as exc:
        raise Refused(Refusal.MALFORMED, str(exc)) from None


def _retrieved(take: asyncio.Future) -> None:
    if not take.cancelled():
        take.exception()


async def _next_frame(stream: InStream, patience: float) -> bytes | None:
    """The next frame of a push, None at its end; ``Refused`` after ``patience`` s without one."""
    try:
        return await asyncio.wait_for(stream.next(), patience)
    except asyncio.TimeoutError:
        raise Refused(Refusal.STALLED,
                      f"no data for {patience:g} s: the push gave back what it held") from None


async def _assemble(stream: InStream, total: int, patience: float) -> memoryview:
    """Copy the payload chunks into one buffer of the declared size, acknowledging each one.

    The buffer is ``numpy.empty``: its pages are not zeroed before data lands, and being private
    memory (huge pages where the kernel allows) Ray copies the value out of it into the object
    store about twice as fast as out of a shared mapping. A push that sends nothing for
    ``patience`` s (``timeout_in_ms``) is ended, and gives back the room it held.
    """
    view = memoryview(np.empty(total, dtype=np.uint8)).cast("B")
    offset = 0
    while True:
        chunk = await _next_frame(stream, patience)
        if chunk is None:
            break
        end = offset + len(chunk)
        if end > total:
            raise Refused(Refusal.MALFORMED, f"payload longer than the declared {total} bytes")
        view[offset:end] = chunk
        offset = end
        await stream.send(wire.encode_ack(offset))
    if offset != total:
        raise Refused(Refusal.MALFORMED, f"truncated payload: {offset} of {total} declared bytes")
    return view
