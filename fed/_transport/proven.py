"""Calls to a peer's receiver whose server proved, with TLS, that it is that peer (``server_proof``).

Without TLS there is no identity and no proof: the calls go as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from fed._security.server_proof import METADATA_KEY, Checker, ProofError

__all__ = ["ProofError", "answer", "check", "gated"]


async def check(call: grpc.aio.Call, checker: Checker | None, dst: str) -> None:
    """Wait for the server's initial metadata and check its proof; ``ProofError`` if it is not ``dst``.

    A call that failed before the server said anything raises its own ``AioRpcError`` instead
    (the peer is down, not an impostor).
    """
    if checker is None:
        return
    metadata = await call.initial_metadata()
    if not any(key == METADATA_KEY for key, _ in metadata or ()) and call.done():
        await call  # raises the call's error if it failed
    checker.check(dst, metadata)


async def answer(call: grpc.aio.UnaryUnaryCall, checker: Checker | None, dst: str) -> bytes:
    """The answer of a unary call, trusted only once its server proved it is ``dst``."""
    await check(call, checker, dst)
    return await call


async def gated(channel: grpc.aio.Channel, method: str, request: bytes, checker: Checker | None, dst: str,
                timeout: float, metadata: Sequence[tuple[str, str]] = ()) -> bytes:
    """One request, written only once the server proved it is ``dst`` (for requests that carry data
    of this party, such as a goodbye's cause), on a client-streaming call of one message."""
    call = channel.stream_unary(method)(timeout=timeout, metadata=tuple(metadata))
    try:
        await check(call, checker, dst)
        await call.write(request)
        await call.done_writing()
    except ProofError:
        call.cancel()
        raise
    return await call
