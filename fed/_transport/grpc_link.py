"""The gRPC link (``grpc.aio``): channels and server, TLS, and the translation of gRPC's errors.

The only module of fed that imports grpc. The receiver's calls are gRPC generic handlers with
bytes in and out (service ``fed.Receiver``, docs/wire.md). With TLS every call starts with the
server's proof of which party it is (``server_proof``): the client checks it before it writes a
frame of a gated call or stream, or trusts a unary call's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc

from fed._config import FedConfig, TlsConfig
from fed._config_grpc import applied_options
from fed._security import probe
from fed._security.identity import peer_names
from fed._security.server_proof import METADATA_KEY, Checker, ProofError, Prover
from fed._transport import link, wire
from fed._transport.link import Caller, LinkError, Refused

SERVICE = "fed.Receiver"
PATHS = {method: f"/{SERVICE}/{method}" for method in link.METHODS}
PUSH_METHOD, PUSH_WHOLE_METHOD, PUSHES_METHOD, PING_METHOD, BYE_METHOD, CALLS_METHOD, STANDBY_METHOD = (
    PATHS[m] for m in link.METHODS)
# Trailing metadata of a push refused only because the receiver holds too many values its program
# has not consumed yet (``LinkError.no_room`` at the sender).
NO_ROOM = (("fed-refused", "no-room"),)
# One chunk plus framing must fit in a message; the window options keep one stream from being
# throttled by gRPC's small defaults.
_MAX_MESSAGE = 64 * 1024 * 1024
# Streams one client connection may have open at the receiver: a sender runs at most 64 pushes
# to a peer at once, plus pings and goodbyes.
_MAX_STREAMS = 100
# A channel argument gRPC ignores but keys connections by: a channel with it gets its own connection.
_OWN_CONNECTION = "fed.own_connection"


def is_no_room(trailing_metadata: Any) -> bool:
    """Whether a refusal carries ``NO_ROOM``."""
    return any(tuple(item) == NO_ROOM[0] for item in trailing_metadata or ())


def error(exc: grpc.aio.AioRpcError) -> LinkError:
    """A failed gRPC call in fed's terms (the one place that reads gRPC's errors)."""
    return LinkError(exc.code().name, exc.details() or "", is_no_room(exc.trailing_metadata()))


# ---- options and credentials ----

def common_options(chunk_size: int) -> list[tuple[str, int | str]]:
    """Options for both ends: message sizes that fit a chunk, keepalive, no port sharing."""
    limit = max(_MAX_MESSAGE, 2 * chunk_size)
    return [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        # A receiver's proof of identity (its certificate chain and a signature) travels as
        # metadata; gRPC's default limit of 8 KiB would refuse a chain with RSA-4096 intermediates.
        ("grpc.max_metadata_size", 64 * 1024),
    ]


def server_options(chunk_size: int, max_header: int, window: int,
                   user: Sequence[tuple[str, int | str]] = ()) -> list[tuple[str, int | str]]:
    """The receiver's server: common options; any rate of HTTP/2 pings from clients is fine (a
    peer's liveness channel pings often; by default gRPC would close it for too many pings); a
    message is at most one chunk and a header, and a connection has at most ``_MAX_STREAMS``
    streams. Each stream's HTTP/2 window is fixed at one push window (``window``, the sender's
    ``inflight_window_in_bytes``) plus one message, with gRPC's BDP probing off: a push then never
    waits on HTTP/2 flow control before its own window, and what gRPC buffers for a stream before
    fed reads it is at most that. (With probing on, gRPC sizes the window from round trips it
    measures: after a fast phase it stays small for seconds on a long link, and it may grow to
    2 GiB a stream.) ``user``: the job's ``grpc_channel_options``, less those fed sets itself."""
    options = {**dict(common_options(chunk_size)), **dict(applied_options(user)[0])}
    message = chunk_size + max_header + 64 * 1024
    options["grpc.max_receive_message_length"] = message
    options["grpc.max_concurrent_streams"] = _MAX_STREAMS
    options["grpc.http2.max_ping_strikes"] = 0
    options["grpc.http2.bdp_probe"] = 0
    options["grpc.http2.lookahead_bytes"] = min(window + message, 2**31 - 1)
    return list(options.items())


def standby_options(chunk_size: int, max_header: int, window: int) -> dict[str, int]:
    """The channel an outbound-only party opens its standbys on (``reverse``): the peer's pushes
    come to it on this channel's streams, so it takes messages and sets its windows as the
    receiver's server does (``server_options``), on a connection of its own."""
    message = chunk_size + max_header + 64 * 1024
    return {_OWN_CONNECTION: 2, "grpc.max_receive_message_length": message, "grpc.http2.bdp_probe": 0,
            "grpc.http2.lookahead_bytes": min(window + message, 2**31 - 1)}


def liveness_options(liveness_timeout_ms: int) -> dict[str, int]:
    """Keepalive for the channel that pings a peer: an HTTP/2 ping every fifth of the liveness
    timeout, and the connection is closed when a ping is not acknowledged within another fifth.
    A peer that went silent (machine gone, frozen, network cut without a reset) loses its
    connection within seconds and cannot make a new one. The peer's gRPC core acknowledges pings
    even while its Python is busy; if a very busy peer is late anyway, its connection is made
    again at once, which liveness does not count as a loss. (``ping_timeout_ms`` bounds the wait
    for the acknowledgement; without it gRPC waits a minute whatever ``keepalive_timeout_ms`` says.)"""
    keepalive = keepalive_options(liveness_timeout_ms)
    every = keepalive["grpc.keepalive_time_ms"]
    # Reconnect at least that often too: gRPC's own backoff grows to two minutes, so after a peer
    # was away for a while (not started yet, restarting) the channel would not try again for
    # longer than the liveness timeout, and a peer back up would count as lost.
    return {**keepalive, "grpc.initial_reconnect_backoff_ms": min(every, 1000),
            "grpc.min_reconnect_backoff_ms": min(every, 1000), "grpc.max_reconnect_backoff_ms": every}


def keepalive_options(liveness_timeout_ms: int) -> dict[str, int]:
    """An HTTP/2 ping every fifth of the liveness timeout, the connection closed when one is not
    acknowledged within another fifth (``liveness_options``; a server serving an outbound-only
    peer's standbys uses the same)."""
    every = within = max(100, liveness_timeout_ms // 5)
    return {"grpc.keepalive_time_ms": every, "grpc.keepalive_timeout_ms": within,
            "grpc.http2.ping_timeout_ms": within}


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """Mutual TLS: the server presents its certificate and demands one from every client."""
    return grpc.ssl_server_credentials([(tls.key, tls.cert)], root_certificates=tls.ca_cert,
                                       require_client_auth=True)


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """Mutual TLS: the client presents its certificate and checks the server's against the CA."""
    return grpc.ssl_channel_credentials(root_certificates=tls.ca_cert, private_key=tls.key,
                                        certificate_chain=tls.cert)


def open_channel(address: str, dst_party: str, tls: TlsConfig | None, chunk_size: int,
                 overrides: dict[str, int] | None = None,
                 user: Sequence[tuple[str, int | str]] = ()) -> grpc.aio.Channel:
    """A channel to ``dst_party``; with TLS the server must present a certificate naming it.
    ``user``: the job's ``grpc_channel_options`` (less those fed sets itself); ``overrides``
    replace both (a channel with other options gets a connection of its own)."""
    options = list({**dict(common_options(chunk_size)), **dict(applied_options(user)[0]),
                    **(overrides or {})}.items())
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    options.append(("grpc.ssl_target_name_override", tls.name_of(dst_party)))
    return grpc.aio.secure_channel(address, channel_credentials(tls), options=options)


# ---- the serving end ----

class _Served:
    """The receiving end of a push over a gRPC stream."""

    def __init__(self, requests: Any, context: grpc.aio.ServicerContext) -> None:
        self._requests, self._context = requests, context

    async def next(self) -> bytes | None:
        try:
            return await self._requests.__anext__()
        except StopAsyncIteration:
            return None

    async def send(self, frame: bytes) -> None:
        try:
            await self._context.write(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - gRPC's error for a call that is gone is not public API
            raise link.Broken(f"the stream is gone ({type(exc).__name__})") from exc


class GrpcServer:
    """The receiver's gRPC server, serving an ``Inbox``."""

    fetches = False  # values are pushed

    def __init__(self, config: FedConfig, inbox: link.Inbox) -> None:
        comm = config.comm
        self._prover = Prover(config.tls.cert, config.tls.key, config.job_name, config.party) if config.tls else None
        options = server_options(comm.chunk_size_in_bytes, wire.MAX_HEADER_BYTES, comm.inflight_window_in_bytes,
                                 comm.grpc_channel_options)
        if config.outbound_only - {config.party}:
            # Its standbys are how this party reaches an outbound-only peer, and its liveness pings
            # ride on them: a peer gone silent must lose them within seconds, as a dialled peer
            # loses its liveness connection (``liveness_options``).
            options = list({**dict(options), **keepalive_options(comm.liveness_timeout_in_ms)}.items())
        self._server = grpc.aio.server(options=options)
        self._server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, {
            **{method: grpc.stream_stream_rpc_method_handler(self._streamed(link.handler(inbox, method), True))
               for method in (link.PUSH, link.PUSHES, link.STANDBY)},
            link.BYE: grpc.stream_unary_rpc_method_handler(self._streamed(link.handler(inbox, link.BYE), False)),
            **{method: grpc.unary_unary_rpc_method_handler(self._unary(link.handler(inbox, method)))
               for method in (link.PUSH_WHOLE, link.PING, link.CALLS)},
        })])

    async def _begin(self, context: grpc.aio.ServicerContext) -> Caller:
        """Who calls; with TLS, before anything else, this party's proof for the client its certificate names."""
        caller = Caller(context.peer(), peer_names(context.auth_context()))
        if self._prover is not None:
            await context.send_initial_metadata(self._prover.metadata(caller.names))
        return caller

    def _unary(self, handle):
        async def serve(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            caller = await self._begin(context)
            try:
                return await handle(request, caller)
            except Refused as refused:
                await _abort(context, refused)
            except Exception as exc:  # noqa: BLE001 - a bug here: the peer learns nothing of it
                await _abort(context, link.internal_error(exc, caller))
        return serve

    def _streamed(self, handle, answer_inline: bool):
        async def serve(requests: Any, context: grpc.aio.ServicerContext):
            caller = await self._begin(context)
            try:
                answer = await handle(_Served(requests, context), caller)
            except link.Broken:  # the connection broke: no one to answer
                return None
            except Refused as refused:
                await _abort(context, refused)
            except Exception as exc:  # noqa: BLE001 - a bug here: the peer learns nothing of it
                await _abort(context, link.internal_error(exc, caller))
            if not answer_inline:
                return answer
            if answer:  # a lane ends without a last answer
                await context.write(answer)
        return serve

    def listen(self, config: FedConfig) -> None:
        """Bind the listening address; a taken port is an ``OSError``, never shared."""
        address = config.listen_address
        try:
            if config.tls is None:
                port = self._server.add_insecure_port(address)
            else:
                port = self._server.add_secure_port(address, server_credentials(config.tls))
        except RuntimeError as exc:
            port, cause = 0, exc
        else:
            cause = None
        if not port:
            raise OSError(f"party {config.party!r} cannot listen on {address}: the port is taken or "
                          f"the address is not local ({cause or 'bind failed'})")

    async def start(self) -> None:
        await self._server.start()

    def wanted(self, src: str, object_id: str) -> None:
        pass

    async def stop(self, grace: float) -> None:
        await self._server.stop(grace)


async def _abort(context: grpc.aio.ServicerContext, refused: Refused) -> None:
    """End the call with fed's own words and the code of the refusal's kind."""
    await context.abort(grpc.StatusCode[refused.kind.value], refused.public, NO_ROOM if refused.no_room else ())


async def serve(config: FedConfig, inbox: link.Inbox) -> GrpcServer:
    server = GrpcServer(config, inbox)
    server.listen(config)
    await server.start()
    return server


# ---- the calling end ----

async def check(call: grpc.aio.Call, checker: Checker | None, dst: str) -> None:
    """Wait for the server's initial metadata and check its proof; ``ProofError`` if it is not ``dst``.

    A call that failed before the server said anything raises its error as a ``LinkError``
    instead (the peer is down, not an impostor).
    """
    if checker is None:
        return
    metadata = await call.initial_metadata()
    if not any(key == METADATA_KEY for key, _ in metadata or ()) and call.done():
        code = await call.code()
        if code != grpc.StatusCode.OK:
            raise LinkError(code.name, await call.details() or "", is_no_room(await call.trailing_metadata()))
    checker.check(dst, metadata)


class _Stream:
    """The sending end of a push over a gRPC stream."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self._call = call

    async def write(self, frame: bytes) -> None:
        try:
            await self._call.write(frame)
        except grpc.aio.AioRpcError as exc:
            raise error(exc) from None

    async def done_writing(self) -> None:
        try:
            await self._call.done_writing()
        except grpc.aio.AioRpcError as exc:
            raise error(exc) from None

    async def read(self) -> bytes | None:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise error(exc) from None
        return None if message is grpc.aio.EOF else message

    def cancel(self) -> None:
        if not self._call.done():
            self._call.cancel()


class GrpcConnection:
    """Calls to one peer over one channel."""

    def __init__(self, channel: grpc.aio.Channel, dst: str, checker: Checker | None,
                 metadata: tuple[tuple[str, str], ...]) -> None:
        self._channel, self._dst, self._checker, self._metadata = channel, dst, checker, metadata

    async def unary(self, method: str, request: bytes, timeout: float, wait_for_ready: bool = False) -> bytes:
        call = self._channel.unary_unary(PATHS[method])(request, timeout=timeout, wait_for_ready=wait_for_ready,
                                                        metadata=self._metadata)
        try:
            await check(call, self._checker, self._dst)
            return await call
        except grpc.aio.AioRpcError as exc:
            raise error(exc) from None

    async def gated(self, method: str, request: bytes, timeout: float) -> bytes:
        """One request on a client-streaming call, written only once the server proved it is the peer."""
        call = self._channel.stream_unary(PATHS[method])(timeout=timeout, metadata=self._metadata)
        try:
            await check(call, self._checker, self._dst)
            await call.write(request)
            await call.done_writing()
            return await call
        except grpc.aio.AioRpcError as exc:
            raise error(exc) from None
        except ProofError:
            call.cancel()
            raise

    async def stream(self, method: str, timeout: float) -> _Stream:
        call = self._channel.stream_stream(PATHS[method])(wait_for_ready=True, metadata=self._metadata)
        try:
            await asyncio.wait_for(check(call, self._checker, self._dst), timeout)
        except grpc.aio.AioRpcError as exc:
            raise error(exc) from None
        except BaseException:
            call.cancel()
            raise
        return _Stream(call)

    def ready(self) -> bool:
        return self._channel.get_state() == grpc.ChannelConnectivity.READY


class GrpcOutbound:
    """This party's channels to its peers: one per peer and purpose (``link.VALUES`` ...)."""

    streams = True

    def __init__(self, config: FedConfig) -> None:
        self._config = config
        self._checker = Checker(config.tls.ca_cert, config.job_name, config.party,
                                config.tls.name_of) if config.tls else None
        self._metadata = tuple((k.lower(), v) for k, v in (config.comm.http_header or {}).items())
        self._connections: dict[tuple[str, str], tuple[grpc.aio.Channel, GrpcConnection]] = {}

    def connect(self, dst: str, purpose: str = link.VALUES) -> GrpcConnection:
        known = self._connections.get((dst, purpose))
        if known is None:
            cfg = self._config
            comm = cfg.comm
            overrides = {link.VALUES: {}, link.CONTROL: {_OWN_CONNECTION: 1},
                         link.LIVENESS: liveness_options(comm.liveness_timeout_in_ms),
                         link.STANDBYS: standby_options(comm.chunk_size_in_bytes, wire.MAX_HEADER_BYTES,
                                                        comm.inflight_window_in_bytes)}[purpose]
            if cfg.proxy is not None:
                overrides = {**overrides, "grpc.http_proxy": cfg.proxy}
            channel = open_channel(cfg.addresses[dst], dst, cfg.tls, comm.chunk_size_in_bytes, overrides or None,
                                   user=comm.grpc_channel_options)
            known = self._connections[(dst, purpose)] = (channel, GrpcConnection(channel, dst, self._checker,
                                                                                 self._metadata))
        return known[1]

    async def presented_names(self, dst: str) -> frozenset[str] | None:
        if self._config.tls is None:
            return None
        return await probe.presented_names(self._config.addresses[dst])

    async def close(self) -> None:
        for channel, _ in self._connections.values():
            await channel.close()
        self._connections.clear()


def outbound(config: FedConfig) -> GrpcOutbound:
    return GrpcOutbound(config)
