"""A Ray actor that hands out ObjectRefs the driver fills in later.

``fed.send`` and ``fed.recv`` (RayFed 0.2) return Ray ObjectRefs at once: whether a push was
delivered, the value a peer sends. When the receiver runs in the driver process there is no
receiver actor to return them, so this one is started the first time either is called.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray

from fed._transport.sender_host import actor_options


class Handoff:
    """Slots keyed by the driver: ``wait`` returns what ``fill`` puts in (or raises its error)."""

    def __init__(self) -> None:
        self._slots: dict[str, asyncio.Future] = {}

    def _slot(self, key: str) -> asyncio.Future:
        return self._slots.setdefault(key, asyncio.get_running_loop().create_future())

    async def wait(self, key: str) -> Any:
        try:
            return await self._slot(key)
        finally:
            self._slots.pop(key, None)

    async def fill(self, key: str, value: Any, error: BaseException | None = None) -> None:
        slot = self._slot(key)
        if slot.done():
            return
        if error is not None:
            slot.set_exception(error)
        else:
            slot.set_result(value)


def start() -> Any:
    """The actor (no CPU; it only waits)."""
    return ray.remote(Handoff).options(**actor_options(None, 1_000_000)).remote()
