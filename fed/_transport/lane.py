"""A lane: one long-lived stream to a peer that carries its small pushes one after another.

A push of its own costs a new call at both ends: over gRPC on loopback here 0.5–0.7 ms a round
trip against 0.15–0.3 ms for a message on an open stream, and with TLS a push's stream first waits
for the server's proof of identity. A lane is opened once (with TLS, after that proof) and takes
whole pushes (``wire.encode_whole``); the receiver serves them in order and answers each in order
(``wire.encode_lane_answer`` / ``encode_lane_refusal``), so answers are matched first in, first out.

A refusal fails only its push. A lane that breaks (connection lost, the receiver stopped or ended
an idle lane, an answer that is not one) fails every push waiting on it as ``UNAVAILABLE``, and
the next push opens a new lane; the sender's retries do the rest, and the receiver drops a value
it already holds, so a value is taken once.
"""

from __future__ import annotations

import asyncio
import collections

from fed._transport import link, wire
from fed._transport.link import Connection, LinkError, OutStream

# Values of at most this many bytes (header and payload) go on the lane; larger ones have a call
# of their own, so that a large value never holds up the small ones behind it.
LANE_BYTES = 256 * 1024


class Lane:
    """Small pushes to one peer over one stream (opened when first needed, again after it broke)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._stream: OutStream | None = None
        self._reader: asyncio.Task | None = None
        self._waiting: collections.deque[asyncio.Future] = collections.deque()  # pushes written, unanswered
        self._writing = asyncio.Lock()  # one push written at a time, in the order answers come

    async def push(self, request: bytes, timeout: float) -> bytes:
        """The receiver's answer to one whole push (``ok`` or ``duplicate``); ``LinkError`` when it
        refused it or the lane broke, ``ProofError`` when the server is not the peer (with TLS),
        ``asyncio.TimeoutError`` without an answer within ``timeout`` (the lane is then reset)."""
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        async with self._writing:
            stream = self._stream
            if stream is None:
                stream = await self._open(timeout)
            self._waiting.append(answer)
            # The write has a timeout of its own: one that waits (for a connection, or gRPC's flow
            # control) is not woken by cancelling its call, only by cancelling the wait.
            deadline = loop.time() + timeout
            try:
                await asyncio.wait_for(stream.write(request), timeout)
            except BaseException as exc:
                answer.cancel()
                # Whatever stopped the write, the lane cannot tell whether the push went: answers
                # would no longer match pushes, so it is broken.
                self._break(stream, exc if isinstance(exc, LinkError) else LinkError("CANCELLED", "write stopped"))
                raise
            late = loop.call_later(max(0.0, deadline - loop.time()), self._late, stream, answer, timeout)
        try:
            return await answer
        finally:
            late.cancel()

    def _late(self, stream: OutStream, answer: asyncio.Future, timeout: float) -> None:
        if not answer.done():
            answer.set_exception(asyncio.TimeoutError())
            self._break(stream, LinkError("DEADLINE_EXCEEDED", f"no answer within {timeout:g} s"))

    async def _open(self, timeout: float) -> OutStream:
        stream = await self._connection.stream(link.PUSHES, timeout)
        self._stream = stream
        self._reader = asyncio.get_running_loop().create_task(self._read(stream))
        return stream

    async def _read(self, stream: OutStream) -> None:
        """Hand each answer to the push it answers, until the lane ends."""
        try:
            while True:
                frame = await stream.read()
                if not frame:
                    raise LinkError("UNAVAILABLE", "the receiver ended the lane")
                if not self._waiting:
                    raise LinkError("UNAVAILABLE", "the receiver answered a push the lane did not carry")
                try:
                    answer, refusal = wire.decode_lane_answer(frame)
                except wire.WireError as exc:
                    raise LinkError("UNAVAILABLE", str(exc)) from None
                waiter = self._waiting.popleft()
                if waiter.done():
                    continue  # its push timed out; the lane was reset then
                if refusal is None:
                    waiter.set_result(answer)
                else:
                    waiter.set_exception(LinkError(*refusal))
        except LinkError as exc:
            self._break(stream, exc)

    def _break(self, stream: OutStream, why: Exception) -> None:
        """End ``stream``; pushes still waiting on it fail as a lost connection would (the sender retries),
        unless the server does not serve lanes at all."""
        if self._stream is not stream:
            return  # broken already; a new lane may be open
        self._stream = None
        stream.cancel()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        self._reader = None
        if isinstance(why, LinkError) and why.code == "UNIMPLEMENTED":
            lost = why  # the server there serves no lane (not fed, or another version): trying again cannot help
        else:
            lost = LinkError("UNAVAILABLE", f"the lane to the receiver broke: {why}")
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(lost)

    def close(self) -> None:
        """End the lane (the sender stops)."""
        if self._stream is not None:
            self._break(self._stream, LinkError("CANCELLED", "the sender stopped"))
