"""A push streamed in chunks: the header, then data within an in-flight window of unacknowledged bytes.

The receiver acknowledges every chunk and at most ``inflight_window_in_bytes`` are
unacknowledged, which bounds what a push holds at both ends. The first window goes right behind
the header, without waiting for the receiver to admit it (its first ack): on a long link that
wait would cost a round trip a push. A refused header still reaches the sender as the receiver's
refusal: its refusal frame, then its status (what was sent of the window is dropped). A try after
the receiver had no room waits for admission instead, so that a push waiting for room does not
send a window each time it asks. Such a try, and every try after a failed one, asks the receiver
to resume (``Header.resume``): its first ack says how much of the value it kept from the broken
try, and the data goes on from there. The sender's retries and patience are ``sender``'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable

from fed._exceptions import FedSendError
from fed._transport import compression, link, wire
from fed._transport.link import Connection, LinkError, OutStream
from fed._transport.metrics import Progress


async def push_streamed(connection: Connection, dst: str, header: wire.Header, segments: list[memoryview],
                        chunk_size: int, patience: float, window: Window, level: int = 1) -> None:
    """One try of a streamed push: the header, then chunks within the window (see ``Window``),
    written by one task while this one reads the receiver's acks and answer. With
    ``header.compression`` each chunk goes compressed at ``level`` (``compression``)."""
    window.restart(header.total_size)
    if not window.eager:
        header = dataclasses.replace(header, resume=True)
    # The link opens the stream once the server proved it is ``dst`` (ProofError, or
    # asyncio.TimeoutError after ``patience``): nothing of the value goes before.
    stream = await connection.stream(link.PUSH, patience)
    progress = Progress(f"push of {header.object_id} ({header.fingerprint}) to {dst}", header.total_size)
    pack = functools.partial(compression.compress, level=level) if header.compression else None
    writer = asyncio.ensure_future(_write(stream, wire.encode_header(header), segments, chunk_size, window, pack))
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


async def _write(stream: OutStream, head: bytes, segments: list[memoryview], chunk_size: int, window: Window,
                 pack: Callable[[bytes], bytes] | None) -> None:
    """The frames of a push: the header, then chunks with at most the window unacknowledged (and,
    unless the attempt is eager, none before the receiver admits the header, its first ack, which
    also says where the data goes on from). The window counts payload bytes; ``pack`` compresses
    each chunk on a thread (the GIL is released), while the previous one is on its way."""
    await stream.write(head)
    await window.admitted()
    loop = asyncio.get_running_loop()
    for chunk in wire.iter_payload(segments, chunk_size, window.start):
        frame = chunk if pack is None else await loop.run_in_executor(None, pack, chunk)
        await window.reserve(len(chunk))
        await stream.write(frame)
    await stream.done_writing()


class Window:
    """Bytes sent but not yet acknowledged by the receiver, capped at ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.acked = 0
        self.start = 0  # where this attempt's data begins: what the receiver kept of a broken one
        self._total = 0
        self.last_progress = 0.0  # monotonic time of the last ack, over every attempt
        self.eager = True  # the next attempt sends its first window before the receiver admits it
        self._moved = asyncio.Event()
        self._admitted = asyncio.Event()

    def restart(self, total: int) -> None:
        """A new attempt of a push of ``total`` bytes: nothing sent or acknowledged, the receiver
        has not admitted the push yet (data waits for that unless ``eager``)."""
        self.sent = self.acked = self.start = 0
        self._total = total
        if self.eager:
            self._admitted.set()
        else:
            self._admitted.clear()

    async def reserve(self, n: int) -> None:
        """Wait until ``n`` more bytes fit (a chunk larger than the window goes alone), and, unless
        the attempt is ``eager``, until the receiver admitted the push (its first ack)."""
        await self._admitted.wait()
        while self.sent - self.acked > 0 and self.sent - self.acked + n > self.size:
            self._moved.clear()
            await self._moved.wait()
        self.sent += n

    async def admitted(self) -> None:
        await self._admitted.wait()

    def ack(self, received: int) -> None:
        if not self._admitted.is_set():
            # The admission of an attempt that waited for it: what the receiver kept of a broken
            # attempt, where this one's data begins (within the value).
            self.start = self.sent = self.acked = min(max(received, 0), self._total)
        # The receiver's count, kept within what was sent and never going back: a receiver that
        # acknowledged more than it got would open the window to the whole value.
        self.acked = min(max(received, self.acked), self.sent)
        self.last_progress = time.monotonic()
        self._admitted.set()
        self._moved.set()


def _refusal(message: bytes) -> LinkError:
    """The receiver's refusal frame as the error it stands for. The status that follows it is
    not enough: gRPC reports INTERNAL to a client whose writes are still pending when the server
    ends the call, as the first window's are when the header is refused."""
    try:
        _, refusal = wire.decode_lane_answer(message)
    except wire.WireError:
        return LinkError("INTERNAL", "the receiver's refusal was malformed")
    return LinkError(*refusal)


async def _follow(stream: OutStream, window: Window, patience: float, progress: Progress) -> bytes:
    """Read acks until the final answer; ``asyncio.TimeoutError`` after ``patience`` s without a message."""
    while True:
        message = await asyncio.wait_for(stream.read(), patience)
        if message is None:
            raise FedSendError("the receiver closed the push without an answer")
        acked = wire.decode_ack(message)
        if acked is None:
            if message[:1] == wire.LANE_REFUSED:  # the refusal, before the status that ends the call
                raise _refusal(message)
            return message
        window.ack(acked)
        progress.update(window.acked)

