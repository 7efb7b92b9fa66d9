"""What a receiver does with each message a peer sends: the ``link.Inbox`` its link serves.

Each message is checked before this party holds anything for it (``admission``): its job and
source, and for a push its header and what it will cost, counted against ``max_buffered_bytes``
from admission until its value is consumed (``Mailbox``). A push that stalls gives its room back
after ``timeout_in_ms``; a value is decoded off the event loop, within its peer's share of the
decoding threads. A refusal is counted, logged clipped and escaped, and reaches the sender in
fed's own words (``link.Refused``): nothing a peer sent goes back to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Awaitable, Callable

from fed._config import FedConfig
from fed._exceptions import FedError, FedRemoteError
from fed._security.untrusted import clip
from fed._serialization import codec
from fed._serialization.policy import make_policy
from fed._transport import compression, reverse, wire
from fed._transport.admission import check_header, check_source, describe, holding_cost
from fed._transport.call_log import CallLog
from fed._transport.link import Broken, Caller, InStream, Refusal, Refused, internal_error
from fed._transport.liveness import Gone, PeerWatch, calls_answer, ping_answer
from fed._transport.mailbox import Arrived, Mailbox, NoRoom
from fed._transport.metrics import Meter
from fed._transport.partials import Partial, Partials
from fed._transport.pushed import Pushed

logger = logging.getLogger("fed.receiver")

# Threads that decode values: a slow decode (a large value, a user's from_wire) runs beside the
# event loop, which keeps serving other pushes, pings and control calls. Decoding works in steps
# of at most one record (``fed._serialization.records``), so the loop gets its turn between them.
# Each peer has at most DECODERS_PER_PEER of the threads at once, so one peer's slow values never
# hold up another's.
DECODERS_PER_PEER = 2
# A payload of at most this many bytes is decoded on the event loop when only fed's own code runs
# to decode it (no registered type's from_wire, no unsafe unpickling): bounded work of a few tens
# of microseconds, where handing it to a thread and back costs more than the decoding.
INLINE_DECODE_BYTES = 16 * 1024


class Inbox:
    """The receiver's handling of its peers' messages, over the mailbox, meter and peer watch it shares."""

    def __init__(self, config: FedConfig, box: Mailbox, meter: Meter, peers: PeerWatch, calls: CallLog,
                 pushed: Pushed) -> None:
        comm = config.comm
        self._config, self._box, self._meter, self._peers, self._calls, self._pushed = (
            config, box, meter, peers, calls, pushed)
        self._policy = make_policy(config.types, comm.serializing_allowed_list, comm.allow_unsafe_deserialization)
        self._decoders = concurrent.futures.ThreadPoolExecutor(DECODERS_PER_PEER * max(1, len(config.peers)),
                                                               thread_name_prefix="fed-decode")
        self._decoding = {peer: asyncio.Semaphore(DECODERS_PER_PEER) for peer in config.peers}
        self._inline = not self._policy.types.by_name and not self._policy.unsafe
        self._ending: asyncio.Future | None = None  # done once lanes are to end (``end_lanes``)
        self._partials = Partials(comm.timeout_in_ms / 1000, box.release)  # broken pushes, to resume
        self.lanes = 0  # lanes being served now
        self.refused = 0  # pushes and requests refused, from any peer

    def end_lanes(self) -> None:
        """Before the server stops: idle lanes end now, busy ones after the push they serve (a
        server's stop would otherwise wait its whole grace for lanes that never end)."""
        ending = self._lanes_end()
        if not ending.done():
            ending.set_result(None)

    def _lanes_end(self) -> asyncio.Future:
        """Done once lanes are to end; made on the loop at first use (the inbox may be made off it)."""
        if self._ending is None:
            self._ending = asyncio.get_running_loop().create_future()
        return self._ending

    def close(self) -> None:
        self._decoders.shutdown(wait=False, cancel_futures=True)
        self._partials.close()

    def _refuse(self, refused: Refused, caller: Caller) -> Refused:
        """Count and log a refused message (bounded, escaped); the link ends its call with fed's own words."""
        self.refused += 1
        if refused.no_room:
            logger.info("asked %s to wait: %s", clip(caller.address, 100), refused.public)
        else:
            logger.warning("refused a call from %s: %s", clip(caller.address, 100), clip(str(refused), 600))
        return refused

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

    async def on_standby(self, stream: InStream, caller: Caller) -> bytes:
        """An outbound-only peer's standby call, held until this party carries a call of its own on
        it (``reverse``); its first frame names the peer, checked as a ping's are."""
        try:
            first = await _next_frame(stream, self._patience)
            if first is None:
                raise Refused(Refusal.MALFORMED, "empty standby")
            job, src = _control(wire.decode_standby, first)
            check_source(self._config, job, src, caller.names)
            self._peers.seen(src)
            await reverse.hold_standby(self._config, stream, src)
            return b""
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
            header = self._admit(first, caller, streamed=True)
            if header is None:
                return b"duplicate"
            key = (header.src, header.object_id)
            push = self._partials.take(key)
            if push is None:
                push = Partial.empty(header)
            else:
                logger.info("push of %s from %s resumes at byte %d", describe(header), header.src, push.offset)
            try:
                # admitted: the sender may send data now, from where a broken try of it got to
                await _acknowledge(stream, push.offset, self._patience)
                unpack = None if header.compression is None else functools.partial(self._unpack, header.src)
                payload = await _assemble(stream, push, self._patience, unpack)
                return await self._store(header, payload)
            except (asyncio.CancelledError, _Truncated, Broken):
                # The connection broke: the stream ended early, an ack found it gone, or the
                # handler was cancelled (or the server stops). What arrived is kept for the
                # sender's next try.
                if push.offset:
                    logger.info("push of %s from %s broke after %d of %d bytes; kept for its next try",
                                describe(header), header.src, push.offset, header.total_size)
                    self._partials.keep(key, push)
                else:
                    self._box.release(key)
                raise
            except BaseException:
                self._box.release(key)
                raise
        except Refused as refused:
            if not isinstance(refused, _AcksUnread):  # a frame would wait as the acks did
                await _tell_refusal(stream, refused, self._patience)
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

    async def on_pushes(self, stream: InStream, caller: Caller) -> bytes:
        """A lane (``fed._transport.lane``): whole pushes one after another on one stream, each
        taken as ``on_push_whole`` takes it and answered in order; a refusal answers its push and
        the lane goes on. One push is served at a time, so a lane holds at most one push's room
        beyond what its values hold. A lane with no push for ``timeout_in_ms``, or whose peer does not
        read an answer for as long, ends (the sender opens another when it has more), as a stalled
        push would: an idle peer holds no stream."""
        self.lanes += 1
        try:
            return await self._serve_lane(stream, caller, self._lanes_end())
        finally:
            self.lanes -= 1

    async def _serve_lane(self, stream: InStream, caller: Caller, ending: asyncio.Future) -> bytes:
        while not ending.done():
            # The lane ends by returning, never by being cancelled: gRPC would keep a cancelled
            # handler's call open, and the server's stop would wait for it.
            incoming = asyncio.ensure_future(stream.next())
            try:
                done, _ = await asyncio.wait((incoming, ending), timeout=self._patience,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not incoming.done():  # idle too long, lanes end, or the call was cancelled
                    incoming.cancel()
            if incoming not in done:
                return b""
            request = incoming.result()
            if request is None:
                return b""
            try:
                answer = wire.encode_lane_answer(await self.on_push_whole(request, caller))
            except Refused as refused:  # counted and logged by on_push_whole
                answer = wire.encode_lane_refusal(refused.kind.value, refused.public, refused.no_room)
            except Exception as exc:  # noqa: BLE001 - a bug here: the peer learns nothing of it
                refused = internal_error(exc, caller)
                answer = wire.encode_lane_refusal(refused.kind.value, refused.public)
            try:  # a peer that does not read its answers holds the lane at most this long
                await asyncio.wait_for(stream.send(answer), self._patience)
            except asyncio.TimeoutError:
                return b""
        return b""

    async def on_pulled(self, src: str, object_id: str, caller: Caller, data: bytes | None,
                        failure: str | None = None) -> None:
        """A value this party fetched from ``src`` (a link that fetches values, ``Server.wanted``;
        ``caller`` as that link names ``src``), taken as a push of it is; or why it could not be
        fetched. A refusal ends the wait on it."""
        key = (src, object_id)
        delay = 0.1
        while failure is None:
            try:
                header = _control(wire.decode_header, _control(wire.decode_whole, data)[0])
                if (header.src, header.object_id) != key:
                    raise Refused(Refusal.MALFORMED, "a value fetched under another value's id")
                await self.on_push_whole(data, caller)
                return
            except Refused as refused:
                if not refused.no_room:
                    failure = f"it was refused: {refused}"
                    break
            await asyncio.sleep(delay)  # no room until this party's program consumes values
            delay = min(2 * delay, 1.0)
        if key in self._box.waiting:
            self._box.deliver(key, Arrived(self._box.waiting[key], error=FedError(
                f"value {clip(object_id, 80)} from party {src!r} could not be received: {failure}")))

    async def _unpack(self, src: str, frame: bytes, view: memoryview) -> int:
        """Decompress a data frame into ``view`` (the rest of its push's buffer), on a decoding
        thread within ``src``'s share; returns the payload bytes it held. A handler cancelled
        meanwhile waits for the thread (one frame, at most ``view``'s bytes) before it lets the
        buffer go, so nothing writes into a buffer kept for a resume or given back."""
        async with self._decoding[src]:
            done = asyncio.get_running_loop().run_in_executor(self._decoders, compression.decompress_into, frame, view)
            try:
                return await asyncio.shield(done)
            except compression.CompressionError as exc:
                raise Refused(Refusal.MALFORMED, f"data frame refused: {exc}") from None
            except asyncio.CancelledError:
                await asyncio.wait((done,))
                raise

    @property
    def _patience(self) -> float:
        """Seconds a push may go without a frame before it gives back what it holds."""
        return self._config.comm.timeout_in_ms / 1000

    def _admit(self, frame: bytes, caller: Caller, streamed: bool = False) -> wire.Header | None:
        """The push's header if this party takes it, None for a duplicate; else ``Refused``.

        A taken push holds what it costs (``holding_cost``: payload, decoded growth, header, slot)
        until its value is handed out or the push fails (``Mailbox.release``). Only a ``streamed``
        push may be compressed, and a streamed header that resumes a broken push of the same value
        is taken with the room that push still holds (``Partials``).
        """
        header = _control(wire.decode_header, frame)
        if header.compression is not None and not streamed:
            raise Refused(Refusal.MALFORMED, "a value in one message is never compressed")
        check_header(self._config, header, caller.names)
        self._peers.seen(header.src)
        key = (header.src, header.object_id)
        if self._box.has(key):
            logger.info("duplicate push of %s from %s dropped", describe(header), header.src)
            self._meter.add(header.src, duplicates=1)
            return None
        if streamed and self._partials.resumable(key, header):
            return header
        if self._box.receiving(key):
            raise Refused(Refusal.BUSY, "a push of this value is already being received")
        try:
            self._box.reserve(key, holding_cost(header, len(frame)))
        except NoRoom as exc:
            raise Refused(Refusal.BUSY if exc.now else Refusal.TOO_LARGE, str(exc), no_room=exc.now) from None
        return header

    async def _store(self, header: wire.Header, payload: memoryview) -> bytes:
        """Decode the value (on a decoding thread, unless small, see ``INLINE_DECODE_BYTES``) and hand
        it to whoever waits for it."""
        key = (header.src, header.object_id)
        try:
            if self._inline and header.total_size <= INLINE_DECODE_BYTES:
                arrived = self._decode(header, payload)
            else:
                async with self._decoding[header.src]:
                    arrived = await asyncio.get_running_loop().run_in_executor(self._decoders, self._decode,
                                                                               header, payload)
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
        return Arrived(header.fingerprint, value=value, nbytes=header.total_size)


async def _tell_refusal(stream: InStream, refused: Refused, patience: float) -> None:
    """A refused push's last frame, before the link ends the call with the same refusal: its sender
    may still be writing the first window (it does not wait for admission), and gRPC then reports
    INTERNAL to it instead of the status. A stream that cannot take the frame is left to the status."""
    try:
        await asyncio.wait_for(stream.send(wire.encode_lane_refusal(refused.kind.value, refused.public,
                                                                    refused.no_room)), patience)
    except Exception:  # noqa: BLE001 - broken or stuck: the status still goes
        pass


def _control(decode, request: bytes):
    """A frame decoded by ``decode``; a malformed one is ``Refused`` (its text names what was wrong)."""
    try:
        return decode(request)
    except wire.WireError as exc:
        raise Refused(Refusal.MALFORMED, str(exc)) from None


async def _next_frame(stream: InStream, patience: float) -> bytes | None:
    """The next frame of a push, None at its end; ``Refused`` after ``patience`` s without one."""
    try:
        return await asyncio.wait_for(stream.next(), patience)
    except asyncio.TimeoutError:
        raise Refused(Refusal.STALLED,
                      f"no data for {patience:g} s: the push gave back what it held") from None


class _Truncated(Refused):
    def __init__(self, got: int, total: int) -> None:
        super().__init__(Refusal.MALFORMED, f"truncated payload: {got} of {total} declared bytes")


class _AcksUnread(Refused):
    def __init__(self, patience: float) -> None:
        super().__init__(Refusal.STALLED, f"acknowledgements not read for {patience:g} s: "
                                          "the push gave back what it held")


async def _acknowledge(stream: InStream, offset: int, patience: float) -> None:
    """Tell the sender ``offset`` payload bytes arrived. While a sender does not read its acks this
    receiver does not read its stream either (and gRPC holds up to one HTTP/2 window of it), so a
    push whose ack is not taken within ``patience`` s is ended and gives back its room."""
    try:
        await asyncio.wait_for(stream.send(wire.encode_ack(offset)), patience)
    except asyncio.TimeoutError:
        raise _AcksUnread(patience) from None


async def _assemble(stream: InStream, push: Partial, patience: float,
                    unpack: Callable[[bytes, memoryview], Awaitable[int]] | None = None) -> memoryview:
    """Copy the payload chunks into the push's buffer from ``push.offset`` on (a compressed push:
    ``unpack`` decompresses each into the rest of the buffer), acknowledging each one. A push that
    sends nothing for ``patience`` s (``timeout_in_ms``) is ended, and gives back the room it held."""
    total = push.header.total_size
    while True:
        chunk = await _next_frame(stream, patience)
        if chunk is None:
            break
        if unpack is not None:
            end = push.offset + await unpack(chunk, push.view[push.offset:])
        else:
            end = push.offset + len(chunk)
            if end > total:
                raise Refused(Refusal.MALFORMED, f"payload longer than the declared {total} bytes")
            push.view[push.offset:end] = chunk
        push.offset = end
        await _acknowledge(stream, end, patience)
    if push.offset != total:
        raise _Truncated(push.offset, total)
    return push.view
