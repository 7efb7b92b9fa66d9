"""The sender: a Ray actor that pushes this party's values to peers, one stream per value."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from typing import Any

import grpc

from fed._config import FedConfig
from fed._exceptions import FedRemoteError, FedSendError
from fed._serialization import codec
from fed._transport import grpc_setup, wire

logger = logging.getLogger("fed.sender")

# Failures that mean "the peer is not reachable right now": worth another try.
_TRANSIENT = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
# A deadline for one attempt: the configured timeout plus one second per 10 MB of payload.
_BYTES_PER_SECOND_FLOOR = 10 * 1024 * 1024


class Sender:
    """Holds one gRPC channel per peer for one job and pushes values over it."""

    def __init__(self, config: FedConfig) -> None:
        self._config = config
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._metadata = tuple((k.lower(), v) for k, v in (config.comm.http_header or {}).items())

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

    async def send(self, dst: str, object_id: str, fingerprint: str, wrapped: list) -> int:
        """Push the value of ``wrapped[0]`` (a Ray ObjectRef) to ``dst``; returns bytes sent.

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
        if header.total_size > limit:
            too_big = FedSendError(f"value {object_id} ({fingerprint}) is {header.total_size} bytes, over "
                                  f"messages_max_size_in_bytes={limit}; it was not sent to {dst!r}")
            error = memoryview(self._error_frame(too_big))
            await self._push(dst, dataclasses.replace(header, codec="error", segments=(error.nbytes,)), [error])
            raise too_big
        await self._push(dst, header, segments)
        return header.total_size

    async def _push(self, dst: str, header: wire.Header, segments: list[memoryview]) -> None:
        cfg = self._config
        head = wire.encode_header(header)
        call = self._channel(dst).stream_unary(wire.PUSH_METHOD)
        timeout = cfg.comm.timeout_in_ms / 1000 + header.total_size / _BYTES_PER_SECOND_FLOOR
        budget_end = time.monotonic() + cfg.comm.timeout_in_ms / 1000
        delay = 0.1
        while True:
            frames = _frames(head, segments, cfg.comm.chunk_size_in_bytes)
            try:
                await call(frames, timeout=timeout, wait_for_ready=True, metadata=self._metadata)
                return
            except grpc.aio.AioRpcError as exc:
                retry = exc.code() in _TRANSIENT and time.monotonic() + delay < budget_end
                if not retry:
                    raise FedSendError(f"could not push {header.object_id} ({header.fingerprint}) to "
                                       f"party {dst!r} at {cfg.addresses[dst]}: {_describe(exc)}") from None
                logger.info("push of %s to %s failed (%s); retrying", header.object_id, dst, exc.code())
                await asyncio.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 5.0)

    def _error_frame(self, exc: BaseException) -> bytes:
        cause = getattr(exc, "cause", None)
        origin = cause if isinstance(cause, BaseException) else exc
        if isinstance(origin, FedRemoteError):
            body = {"party": origin.src_party, "type": origin.error_type, "cause": origin.cause}
        else:
            body = {"party": self._config.party, "type": type(origin).__name__, "cause": None}
            if self._config.comm.expose_error_trace:
                body["cause"] = str(exc)
        return json.dumps(body).encode()

    async def stop(self) -> None:
        """Close every channel."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


async def _frames(head: bytes, segments: list[memoryview], chunk_size: int):
    yield head
    for chunk in wire.iter_payload(segments, chunk_size):
        yield chunk


def _describe(exc: Exception | None) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)


def actor_options(resources: Any, max_concurrency: int) -> dict[str, Any]:
    """Ray options for a proxy actor: no CPU, optional placement resources."""
    options: dict[str, Any] = {"num_cpus": 0, "max_concurrency": max_concurrency}
    if resources:
        options["resources"] = dict(resources)
    return options

