"""The receiver: a Ray actor serving gRPC pushes from peers and handing values to this party."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import numpy as np

from fed._config import FedConfig
from fed._exceptions import FedDivergenceError, FedError, FedRemoteError
from fed._runtime.call_log import CallLog
from fed._security.identity import peer_is
from fed._serialization import codec
from fed._serialization.allowlist import merge_allowed
from fed._transport import grpc_setup, wire
from fed._transport.liveness import Gone, PeerWatch, calls_answer, gone_error, ping_answer
from fed._transport.metrics import Meter, node_id

logger = logging.getLogger("fed.receiver")


class _Arrived:
    """A value (or a remote error) delivered for one key."""

    __slots__ = ("fingerprint", "value", "error")

    def __init__(self, fingerprint: str, value: Any = None, error: Exception | None = None) -> None:
        self.fingerprint, self.value, self.error = fingerprint, value, error


class _Refused(Exception):
    """A push this receiver will not take; carries the gRPC status for the sender."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class Receiver:
    """Holds one gRPC server on the party's listening address for one job.

    Values are stored under ``(source party, object id)`` until this party asks for them with
    ``get``; a second push of a key is acknowledged as a duplicate and dropped. The payload bytes of
    values taken but not yet handed out (and of pushes being received) are capped at
    ``max_buffered_bytes``: a push over the cap is refused as UNAVAILABLE, which the sender retries,
    so an honest peer waits while a flood of values nobody consumes stops at the cap.
    """

    def __init__(self, config: FedConfig) -> None:
        self._config = config
        comm = config.comm
        self._allowed = None if comm.allow_unsafe_deserialization else merge_allowed(comm.serializing_allowed_list)
        self._slots: dict[tuple[str, str], asyncio.Future] = {}
        self._consumed: set[tuple[str, str]] = set()
        self._held: dict[tuple[str, str], int] = {}  # payload bytes per key received or receiving
        self._buffered = 0
        self._waiting: dict[tuple[str, str], str] = {}  # keys this party waits for -> expected fingerprint
        self._calls = CallLog()  # this party's calls, as far as its driver has shared them
        self._peers = PeerWatch(config, self._calls, self._peer_gone)
        self._server: grpc.aio.Server | None = None
        self._meter = Meter(config.job_name, config.party, "received")
        self._refused = 0  # pushes and requests refused, from any peer
        self._peak = 0  # the most bytes held at once

    async def start(self) -> str:
        """Bind the listening address and serve; a taken port is an error, never shared."""
        cfg = self._config
        server = grpc.aio.server(options=grpc_setup.server_options(cfg.comm.chunk_size_in_bytes))
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("fed.Receiver", {
            "Push": grpc.stream_stream_rpc_method_handler(self._push),
            "PushWhole": grpc.unary_unary_rpc_method_handler(self._push_whole),
            "Ping": grpc.unary_unary_rpc_method_handler(self._ping),
            "Bye": grpc.unary_unary_rpc_method_handler(self._bye),
            "Calls": grpc.unary_unary_rpc_method_handler(self._calls_of),
        })])
        address = cfg.listen_address
        try:
            if cfg.tls is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, grpc_setup.server_credentials(cfg.tls))
        except RuntimeError as exc:
            port, cause = 0, exc
        else:
            cause = None
        if not port:
            raise OSError(f"party {cfg.party!r} cannot listen on {address}: the port is taken or "
                          f"the address is not local ({cause or 'bind failed'})")
        await server.start()
        self._server = server
        return address

    async def stop(self, grace: float = 1.0) -> None:
        """Stop serving; pending waits for values fail."""
        await self._peers.stop()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        for fut in self._slots.values():
            if not fut.done():
                fut.cancel()

    async def get(self, src: str, object_id: str, fingerprint: str) -> Any:
        """Wait for the value ``src`` pushes under ``object_id`` and return it (once)."""
        key = (src, object_id)
        if key in self._consumed:
            raise RuntimeError(f"value {object_id} from {src!r} was already handed out")
        slot = self._slot(key)
        if not slot.done():
            gone = self._peers.gone(src)
            if gone is not None:
                del self._slots[key]
                raise gone_error(self._config.party, src, gone, object_id, fingerprint)
            self._waiting[key] = fingerprint
            self._peers.watch(src, lambda: any(k[0] == src for k in self._waiting))
            try:
                await self._wait(slot, src, object_id, fingerprint)
            finally:
                self._waiting.pop(key, None)
        arrived = slot.result()
        del self._slots[key]
        self._consumed.add(key)
        self._release(key)
        if arrived.fingerprint != fingerprint:
            raise FedDivergenceError(
                f"party {src!r} sent value {object_id} for call {arrived.fingerprint!r}, but this "
                f"party's program made call {fingerprint!r} there: the parties' programs diverged"
            )
        if arrived.error is not None:
            raise arrived.error
        return arrived.value

    async def _wait(self, slot: asyncio.Future, src: str, object_id: str, fingerprint: str) -> None:
        """Until the slot holds a value or an error; with ``max_wait_in_ms``, an error once that passes."""
        limit = self._config.comm.max_wait_in_ms
        if limit is None:
            await asyncio.shield(slot)
            return
        try:
            await asyncio.wait_for(asyncio.shield(slot), limit / 1000)
        except asyncio.TimeoutError:
            del self._slots[(src, object_id)]
            self._consumed.add((src, object_id))  # should it come later, it is dropped
            raise FedError(f"party {self._config.party!r} waited max_wait_in_ms={limit} for value "
                           f"{object_id} ({fingerprint}) from party {src!r}") from None

    def _peer_gone(self, party: str) -> None:
        """``party`` will send nothing more: every wait on it ends with an error that says why."""
        gone = self._peers.gone(party)
        for (src, object_id), fingerprint in list(self._waiting.items()):
            if src == party:
                self._deliver((src, object_id), _Arrived(
                    fingerprint, error=gone_error(self._config.party, src, gone, object_id, fingerprint)))

    async def settle(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the values this party asked for; how many never came."""
        waiting = [fut for fut in self._slots.values() if not fut.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout)
        return sum(not fut.done() for fut in waiting)

    def peers_started(self, parties: list[str]) -> None:
        """These peers answered at ``fed.init``: from now on, silence for ``liveness_timeout_in_ms`` is loss."""
        for party in parties:
            self._peers.seen(party)

    def counts(self) -> dict[str, int]:
        """Pushes taken so far (values stored, duplicates dropped) and payload bytes buffered now."""
        peers = self._meter.snapshot().values()
        return {"values": sum(p["values"] for p in peers), "duplicates": sum(p["duplicates"] for p in peers),
                "buffered_bytes": self._buffered}

    def stats(self) -> dict[str, Any]:
        """What this receiver took, per peer; what it refused; what it holds that was not consumed
        yet (values received or being received, and their payload bytes)."""
        return {"peers": self._meter.snapshot(), "refused": self._refused,
                "waiting_values": len(self._held), "waiting_bytes": self._buffered, "waiting_peak": self._peak,
                "node": node_id()}

    async def _refuse(self, refused: _Refused, context: grpc.aio.ServicerContext) -> None:
        self._refused += 1
        await _refuse(refused, context)

    def _slot(self, key: tuple[str, str]) -> asyncio.Future:
        fut = self._slots.get(key)
        if fut is None:
            fut = self._slots[key] = asyncio.get_running_loop().create_future()
        return fut

    def record_calls(self, start: int, digests: bytes, fingerprints: list[str]) -> None:
        """The driver shares the calls its program made since it last did (see ``call_log``)."""
        try:
            self._calls.extend(start, digests, fingerprints)
        except ValueError as exc:
            logger.warning("%s", exc)

    async def _ping(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return ping_answer(self._config, self._calls, request)

    async def _calls_of(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        answer = calls_answer(self._calls, request)
        if answer is None:
            await self._refuse(_Refused(grpc.StatusCode.INVALID_ARGUMENT, "malformed calls request"), context)
        return answer

    async def _bye(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        """A peer will send nothing more in this job (its program finished or aborted)."""
        try:
            try:
                body = wire.decode_json(request, "goodbye")
            except wire.WireError as exc:
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
            src = body.get("src")
            if body.get("kind") not in wire.BYE_KINDS or not isinstance(src, str):
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "malformed goodbye")
            self._check_source(body.get("job"), src, context)
            cause = body.get("cause")
            self._peers.mark_gone(src, Gone(body["kind"], str(body.get("error_type") or ""),
                                            cause if isinstance(cause, str) else None))
            return b"ok"
        except _Refused as refused:
            await self._refuse(refused, context)

    async def _push(self, requests, context: grpc.aio.ServicerContext) -> None:
        try:
            first = await _next_frame(requests)
            if first is None:
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, "empty push: no header frame")
            header = self._admit(first, context)
            if header is None:
                answer = b"duplicate"
            else:
                try:
                    await context.write(wire.encode_ack(0))  # admitted: the sender may send data now
                    answer = self._store(header, await _assemble(requests, header.total_size, context))
                except BaseException:
                    self._release((header.src, header.object_id))
                    raise
            await context.write(answer)
        except _Refused as refused:
            await self._refuse(refused, context)

    async def _push_whole(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            try:
                head, payload = wire.decode_whole(request)
            except wire.WireError as exc:
                raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
            header = self._admit(head, context)
            if header is None:
                return b"duplicate"
            try:
                if len(payload) != header.total_size:
                    raise _Refused(grpc.StatusCode.INVALID_ARGUMENT,
                                   f"payload of {len(payload)} bytes, the header declares {header.total_size}")
                return self._store(header, payload)
            except BaseException:
                self._release((header.src, header.object_id))
                raise
        except _Refused as refused:
            await self._refuse(refused, context)

    def _admit(self, frame: bytes, context: grpc.aio.ServicerContext) -> wire.Header | None:
        """The push's header if this party takes it, None for a duplicate; else ``_Refused``.

        A taken push holds its payload size in the buffer until its value is handed out or the
        push fails (``_release``).
        """
        try:
            header = wire.decode_header(frame)
        except wire.WireError as exc:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        self._check(header, context)
        self._peers.seen(header.src)
        key = (header.src, header.object_id)
        if key in self._consumed or (key in self._slots and self._slots[key].done()):
            logger.info("duplicate push of %s from %s dropped", header.object_id, header.src)
            self._meter.add(header.src, duplicates=1)
            return None
        if key in self._held:
            raise _Refused(grpc.StatusCode.UNAVAILABLE,
                           f"a push of value {header.object_id} from {header.src!r} is already being received")
        self._reserve(key, header.total_size)
        return header

    def _reserve(self, key: tuple[str, str], size: int) -> None:
        cap = self._config.comm.max_buffered_bytes
        if size > cap:
            raise _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"value of {size} bytes exceeds party {self._config.party!r}'s max_buffered_bytes={cap}")
        if self._buffered + size > cap:
            raise _Refused(grpc.StatusCode.UNAVAILABLE,
                           f"party {self._config.party!r} already holds {self._buffered} bytes of values "
                           f"that it has not consumed yet; a value of {size} bytes would pass its "
                           f"max_buffered_bytes={cap}. Try again after it consumes some")
        self._held[key] = size
        self._buffered += size
        self._peak = max(self._peak, self._buffered)
        self._meter.waiting(len(self._held), self._buffered)

    def _release(self, key: tuple[str, str]) -> None:
        self._buffered -= self._held.pop(key, 0)
        self._meter.waiting(len(self._held), self._buffered)

    def _store(self, header: wire.Header, payload: memoryview) -> bytes:
        """Decode the value and hand it to whoever waits for it."""
        key = (header.src, header.object_id)
        try:
            arrived = self._decode(header, payload)
        except _Refused as refused:
            # This party is waiting for the value too: tell it why it will never come.
            self._deliver(key, _Arrived(header.fingerprint, error=FedError(
                f"value {header.object_id} from party {header.src!r} was refused: {refused}")))
            raise
        self._deliver(key, arrived)
        self._meter.add(header.src, values=1, bytes=header.total_size)
        return b"ok"

    def _deliver(self, key: tuple[str, str], arrived: _Arrived) -> None:
        fut = self._slot(key)
        if not fut.done():
            fut.set_result(arrived)

    def _check_source(self, job: Any, src: str, context: grpc.aio.ServicerContext) -> None:
        """The message is for this job and comes from a peer (proved by its certificate with TLS)."""
        cfg = self._config
        if job != cfg.job_name:
            raise _Refused(grpc.StatusCode.NOT_FOUND,
                           f"unknown job {job!r}: party {cfg.party!r} serves job {cfg.job_name!r} here")
        if src not in cfg.addresses or src == cfg.party:
            raise _Refused(grpc.StatusCode.PERMISSION_DENIED, f"unknown source party {src!r}")
        if cfg.tls is not None and not peer_is(context.auth_context(), src):
            raise _Refused(grpc.StatusCode.PERMISSION_DENIED,
                           f"peer certificate does not name the claimed source party {src!r}")

    def _check(self, header: wire.Header, context: grpc.aio.ServicerContext) -> None:
        cfg = self._config
        if header.dst != cfg.party:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT,
                           f"push addressed to {header.dst!r} reached party {cfg.party!r}")
        self._check_source(header.job, header.src, context)
        limit = cfg.comm.messages_max_size_in_bytes
        if header.total_size > limit:
            raise _Refused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"value of {header.total_size} bytes exceeds this party's "
                           f"messages_max_size_in_bytes={limit}")

    def _decode(self, header: wire.Header, payload: memoryview) -> _Arrived:
        segments = wire.split_payload(payload, header.segments)
        if header.codec == "error":
            body = wire.decode_json(segments[0], "error frame")
            error = FedRemoteError(str(body.get("party", header.src)), str(body.get("type", "Exception")),
                                   body.get("cause") if isinstance(body.get("cause"), str) else None)
            return _Arrived(header.fingerprint, error=error)
        try:
            value = codec.decode(segments, self._allowed)
        except Exception as exc:  # noqa: BLE001 - any failure to decode is the sender's problem
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT,
                           f"cannot decode value {header.object_id}: {exc}") from None
        return _Arrived(header.fingerprint, value=value)


async def _refuse(refused: _Refused, context: grpc.aio.ServicerContext) -> None:
    """Log a refused push and end its call with the refusal's status and message."""
    logger.warning("refused a push from %s: %s", context.peer(), refused)
    await context.abort(refused.code, str(refused))


async def _next_frame(requests) -> bytes | None:
    try:
        return await requests.__anext__()
    except StopAsyncIteration:
        return None


async def _assemble(requests, total: int, context: grpc.aio.ServicerContext) -> memoryview:
    """Copy the payload chunks into one buffer of the declared size, acknowledging each one.

    The buffer is ``numpy.empty``: its pages are not zeroed before data lands, and being private
    memory (huge pages where the kernel allows) Ray copies the value out of it into the object
    store about twice as fast as out of a shared mapping.
    """
    view = memoryview(np.empty(total, dtype=np.uint8)).cast("B")
    offset = 0
    async for chunk in requests:
        end = offset + len(chunk)
        if end > total:
            raise _Refused(grpc.StatusCode.INVALID_ARGUMENT,
                           f"payload longer than the declared {total} bytes")
        view[offset:end] = chunk
        offset = end
        await context.write(wire.encode_ack(offset))
    if offset != total:
        raise _Refused(grpc.StatusCode.INVALID_ARGUMENT,
                       f"truncated payload: {offset} of {total} declared bytes")
    return view
