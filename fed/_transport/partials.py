"""What a receiver keeps of streamed pushes whose connection broke, so that the sender's next try
goes on from the last byte the receiver acknowledged instead of byte 0 (docs/wire.md, "Retries").

A broken push keeps its buffer, how much of it arrived, and the room its admission holds in the
mailbox, for ``keep_s`` seconds (``timeout_in_ms``): no more memory than the push was admitted
for, and only for as long as an unfinished push may hold it anyway. The sender's next try, a
header that asks to resume and declares the same value (same source, object id, fingerprint,
segments), takes it and continues; when ``keep_s`` passes first, the room is given back.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fed._transport import wire

Key = tuple[str, str]  # (source party, object id)


@dataclass(eq=False)
class Partial:
    """A push being assembled: its buffer and the payload bytes it holds so far."""

    header: wire.Header
    view: memoryview
    offset: int = 0

    @classmethod
    def empty(cls, header: wire.Header) -> Partial:
        """A fresh buffer of the declared size. ``numpy.empty``: its pages are not zeroed before
        data lands, and being private memory (huge pages where the kernel allows) Ray copies the
        value out of it into the object store about twice as fast as out of a shared mapping."""
        return cls(header, memoryview(np.empty(header.total_size, dtype=np.uint8)).cast("B"))

    def resumed_by(self, header: wire.Header) -> bool:
        return header.resume and dataclasses.replace(header, resume=False) == \
            dataclasses.replace(self.header, resume=False)


class Partials:
    """Broken pushes by ``(source, object id)``; ``release`` gives a push's room back."""

    def __init__(self, keep_s: float, release: Callable[[Key], None]) -> None:
        self._keep_s, self._release = keep_s, release
        self._held: dict[Key, tuple[Partial, asyncio.TimerHandle]] = {}

    def keep(self, key: Key, partial: Partial) -> None:
        """Keep a broken push (its room stays held) until it is resumed or ``keep_s`` passes."""
        # Nothing is kept for ``key`` here: a try of a value while another is kept or under way is
        # refused as busy. Dropping one would give back the room, which is this push's too.
        timer = asyncio.get_running_loop().call_later(self._keep_s, self.drop, key)
        self._held[key] = (partial, timer)

    def resumable(self, key: Key, header: wire.Header) -> bool:
        held = self._held.get(key)
        return held is not None and held[0].resumed_by(header)

    def take(self, key: Key) -> Partial | None:
        """The kept push of ``key``, no longer kept (its room now goes with it), or None."""
        held = self._held.pop(key, None)
        if held is None:
            return None
        held[1].cancel()
        return held[0]

    def drop(self, key: Key) -> None:
        """Forget ``key``'s kept push and give its room back."""
        if self.take(key) is not None:
            self._release(key)

    def close(self) -> None:
        for key in list(self._held):
            self.drop(key)
