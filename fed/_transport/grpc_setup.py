"""gRPC options and credentials shared by the receiver's server and the sender's channels."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from fed._config import TlsConfig
from fed._config_grpc import applied_options

# One chunk plus framing must fit in a message; the window options keep one stream from being
# throttled by gRPC's small defaults.
_MAX_MESSAGE = 64 * 1024 * 1024


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


# Streams one client connection may have open at the receiver: a sender runs at most 64 pushes
# to a peer at once, plus pings and goodbyes.
_MAX_STREAMS = 100


def server_options(chunk_size: int, max_header: int,
                   user: Sequence[tuple[str, int | str]] = ()) -> list[tuple[str, int | str]]:
    """The receiver's server: common options; any rate of HTTP/2 pings from clients is fine (a
    peer's liveness channel pings often; by default gRPC would close it for too many pings); a
    message is at most one chunk and a header, and a connection has at most ``_MAX_STREAMS``
    streams, which bounds what gRPC buffers for a peer before fed sees it. ``user``: the job's
    ``grpc_channel_options``, less those fed sets itself."""
    options = {**dict(common_options(chunk_size)), **dict(applied_options(user)[0])}
    options["grpc.max_receive_message_length"] = chunk_size + max_header + 64 * 1024
    options["grpc.max_concurrent_streams"] = _MAX_STREAMS
    options["grpc.http2.max_ping_strikes"] = 0
    return list(options.items())


def liveness_options(liveness_timeout_ms: int) -> dict[str, int]:
    """Keepalive for the channel that pings a peer: an HTTP/2 ping every fifth of the liveness
    timeout, and the connection is closed when a ping is not acknowledged within another fifth.
    A peer that went silent (machine gone, frozen, network cut without a reset) loses its
    connection within seconds and cannot make a new one. The peer's gRPC core acknowledges pings
    even while its Python is busy; if a very busy peer is late anyway, its connection is made
    again at once, which liveness does not count as a loss. (``ping_timeout_ms`` bounds the wait
    for the acknowledgement; without it gRPC waits a minute whatever ``keepalive_timeout_ms`` says.)"""
    every = within = max(100, liveness_timeout_ms // 5)
    # Reconnect at least that often too: gRPC's own backoff grows to two minutes, so after a peer
    # was away for a while (not started yet, restarting) the channel would not try again for
    # longer than the liveness timeout, and a peer back up would count as lost.
    return {"grpc.keepalive_time_ms": every, "grpc.keepalive_timeout_ms": within,
            "grpc.http2.ping_timeout_ms": within, "grpc.initial_reconnect_backoff_ms": min(every, 1000),
            "grpc.min_reconnect_backoff_ms": min(every, 1000), "grpc.max_reconnect_backoff_ms": every}


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """Mutual TLS: the server presents its certificate and demands one from every client."""
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)], root_certificates=tls.ca_cert, require_client_auth=True
    )


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """Mutual TLS: the client presents its certificate and checks the server's against the CA."""
    return grpc.ssl_channel_credentials(
        root_certificates=tls.ca_cert, private_key=tls.key, certificate_chain=tls.cert
    )


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
