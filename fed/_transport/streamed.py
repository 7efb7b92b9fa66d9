"""A push streamed in chunks: the header, then data within an in-flight window of unacknowledged bytes.

The receiver acknowledges every chunk and at most ``inflight_window_in_bytes`` are
unacknowledged, which bounds what a push holds at both ends; no data goes before the receiver
admits the header (its first ack), so a refused header reaches the sender as the receiver's
status, not as a broken stream. The sender's retries and patience are ``sender``'s.
"""

from __future__ import annotations

import asyncio
import time

from fed._exceptions import FedSendError
from fed._transport import link, wire
from fed._transport.link import Connection, OutStream
from fed._transport.metrics import Progress


async def push_streamed(connection: Connection, dst: str, header: wire.Header, segments: list[memoryview],
                        chunk_size: int, patience: float, window: Window) -> None:
    """One try of a streamed push: the header, then (once admitted) chunks within the window,
    written by one task while this one reads the receiver's acks and answer."""
    window.restart()
    # The link opens the stream once the server proved it is ``dst`` (ProofError, or
    # asyncio.TimeoutError after ``patience``): nothing of the value goes before.
    stream = await connection.stream(link.PUSH, patience)
    progress = Progress(f"push of {header.object_id} ({header.fingerprint}) to {dst}", header.total_size)
    writer = asyncio.ensure_future(_write(stream, wire.encode_header(header), segments, chunk_size, window))
    reader = asyncio.ensure_future(_follow(stream, window, patience, progress))
    try:
        # The receiver's answer (or the stream's failure, which the reader sees too) decides.
        await asyncio.wait((writer, reader), return_when=asyncio.FIRST_EXCEPTION)
        await reader
    finally:
        for task in (writer, reader):
            task.cancel()
        await asyncio.gather(writer, reader, return_exceptions=True)
        stream.cancel()


async def _write(stream: OutStream, head: bytes, segments: list[memoryview], chunk_size: int, window: Window) -> None:
    """The frames of a push: no data before the receiver admits the header (its first ack), at
    most the window unacknowledged."""
    await stream.write(head)
    for chunk in wire.iter_payload(segments, chunk_size):
        await window.reserve(len(chunk))
        await stream.write(chunk)
    await stream.done_writing()


class Window:
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
        # The receiver's count, kept within what was sent and never going back: a receiver that
        # acknowledged more than it got would open the window to the whole value.
        self.acked = min(max(received, self.acked), self.sent)
        self.last_progress = time.monotonic()
        self._admitted.set()
        self._moved.set()


async def _follow(stream: OutStream, window: Window, patience: float, progress: Progress) -> bytes:
    """Read acks until the final answer; ``asyncio.TimeoutError`` after ``patience`` s without a message."""
    while True:
        message = await asyncio.wait_for(stream.read(), patience)
        if message is None:
            raise FedSendError("the receiver closed the push without an answer")
        acked = wire.decode_ack(message)
        if acked is None:
            return message
        window.ack(acked)
        progress.update(window.acked)

