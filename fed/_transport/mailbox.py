"""Values pushed to this party, kept by key until its program takes them, and the cap on their bytes.

The receiver fills the mailbox from gRPC pushes; this party's driver empties it through the
receiver's ``get`` / ``get_many``. A value is handed out once. A value taken leaves the mailbox for
Ray's object store, so the mailbox holds only what arrived before the program asked for it, plus
the pushes being received: their payload bytes are capped at ``max_buffered_bytes`` (plus one
value the program waits for, see ``reserve``). The values of one ``get_many`` leave the count as
they arrive, though the receiver returns them together: they are the inputs of one call, which
needs them all at once anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from fed._exceptions import FedError
from fed._transport.metrics import Meter

logger = logging.getLogger("fed.receiver")

Key = tuple[str, str]  # (source party, object id)
Then = Callable[[Any], None]  # given the ``Arrived`` handed out, or the exception that ended the wait


class Arrived:
    """A value (or a remote error) delivered for one key."""

    __slots__ = ("fingerprint", "value", "error", "nbytes")

    def __init__(self, fingerprint: str, value: Any = None, error: Exception | None = None, nbytes: int = 0) -> None:
        self.fingerprint, self.value, self.error = fingerprint, value, error
        self.nbytes = nbytes  # of the payload it came in


class NoRoom(Exception):
    """A push the mailbox cannot hold: ``now`` if it would fit once the program takes some values,
    else never (the value alone is over the cap)."""

    def __init__(self, message: str, now: bool) -> None:
        super().__init__(message)
        self.now = now


class Mailbox:
    """One slot per key: a push fills it, ``take`` empties it."""

    def __init__(self, party: str, cap: int, max_wait_in_ms: int | None, meter: Meter) -> None:
        self._party = party
        self._cap = cap
        self._max_wait = max_wait_in_ms
        self._meter = meter
        self._slots: dict[Key, asyncio.Future] = {}
        self._taken: set[Key] = set()
        self._held: dict[Key, int] = {}  # payload bytes per key received or being received
        self.held_bytes = 0
        self.peak_bytes = 0  # the most bytes held at once
        self._beyond: Key | None = None  # the push let in beyond the cap, if any
        self.waiting: dict[Key, str] = {}  # keys the program waits for -> the fingerprint it expects
        self._takers: dict[Key, tuple[Then, asyncio.TimerHandle | None]] = {}  # ``take_soon`` waits

    @property
    def held_values(self) -> int:
        return len(self._held)

    def was_taken(self, key: Key) -> bool:
        """The program took this key's value already."""
        return key in self._taken

    def has(self, key: Key) -> bool:
        """A value or error for ``key`` was delivered (taken or not): another push of it is a duplicate."""
        return key in self._taken or (key in self._slots and self._slots[key].done())

    def receiving(self, key: Key) -> bool:
        """A push of ``key`` holds room now (it is being received, or waits to be taken)."""
        return key in self._held

    def waits_for(self, src: str) -> bool:
        """The program waits for some value from ``src``."""
        return any(key[0] == src for key in self.waiting)

    def reserve(self, key: Key, size: int) -> None:
        """Hold room for a push of ``size`` payload bytes until ``release``; ``NoRoom`` if over the cap.

        A value the program already waits for gets in beyond the cap, one at a time: otherwise
        values that arrived before the program asked for them, holding all the room, could keep
        out the value it needs before it takes them. It is taken as soon as it arrives.
        """
        if size > self._cap:
            raise NoRoom(f"a value that needs {size} bytes at party {self._party!r} (its payload, what it "
                         f"decodes to, its header) exceeds its max_buffered_bytes={self._cap}", now=False)
        if self.held_bytes + size > self._cap:
            if key not in self.waiting or self._beyond is not None:
                raise NoRoom(f"party {self._party!r} already holds {self.held_bytes} bytes of values that "
                             f"it has not consumed yet; a value of {size} bytes would pass its "
                             f"max_buffered_bytes={self._cap}. Try again after it consumes some", now=True)
            self._beyond = key
        self._held[key] = size
        self.held_bytes += size
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)
        self._meter.waiting(len(self._held), self.held_bytes)

    def release(self, key: Key) -> None:
        """The room of ``key``'s push is free again (its value was taken, or the push failed)."""
        self.held_bytes -= self._held.pop(key, 0)
        if self._beyond == key:
            self._beyond = None
        self._meter.waiting(len(self._held), self.held_bytes)

    def deliver(self, key: Key, arrived: Arrived) -> None:
        """Fill ``key``'s slot, unless it holds something already; a ``take_soon`` waiting for it
        is handed the value here and now."""
        fut = self._slot(key)
        if fut.done():
            return
        fut.set_result(arrived)
        then = self._untake(key)
        if then is not None:
            _call(then, self._hand_out(key))

    def take_soon(self, key: Key, fingerprint: str, then: Then) -> None:
        """Hand ``key``'s value out (once) to ``then`` as soon as it is delivered: now if it was,
        else inside the ``deliver`` call itself, with no turn of the event loop in between (a
        driver thread waiting for it wakes at once). ``then`` is given an exception instead when
        ``max_wait_in_ms`` passes first (``FedError``) or the mailbox closes (``CancelledError``)."""
        if self._slot(key).done():
            _call(then, self._hand_out(key))
            return
        self.waiting[key] = fingerprint
        timer = None
        if self._max_wait is not None:
            timer = asyncio.get_running_loop().call_later(self._max_wait / 1000, self._expire, key, fingerprint)
        self._takers[key] = (then, timer)

    def forget(self, key: Key) -> None:
        """A ``take_soon`` nobody waits for any more: a value delivered later stays for another take."""
        self._untake(key)

    def _untake(self, key: Key) -> Then | None:
        """End ``key``'s ``take_soon`` wait (its max-wait timer too); its taker, if it had one."""
        taker = self._takers.pop(key, None)
        if taker is None:
            return None
        then, timer = taker
        if timer is not None:
            timer.cancel()
        self.waiting.pop(key, None)
        return then

    async def take(self, key: Key, fingerprint: str) -> Arrived:
        """Wait for ``key``'s delivery and hand it out (once); with ``max_wait_in_ms``, an error once that passes."""
        done = asyncio.get_running_loop().create_future()

        def then(result: Any) -> None:
            if not done.done():
                (done.set_exception if isinstance(result, BaseException) else done.set_result)(result)
        self.take_soon(key, fingerprint, then)
        try:
            return await done
        except asyncio.CancelledError:
            self.forget(key)
            raise

    def _hand_out(self, key: Key) -> Arrived:
        slot = self._slots.pop(key)
        self._taken.add(key)
        self.release(key)
        return slot.result()

    def _expire(self, key: Key, fingerprint: str) -> None:
        then, _ = self._takers.pop(key)
        self.waiting.pop(key, None)
        del self._slots[key]
        self._taken.add(key)  # should it come later, it is dropped
        _call(then, FedError(f"party {self._party!r} waited max_wait_in_ms={self._max_wait} for value "
                             f"{key[1]} ({fingerprint}) from party {key[0]!r}"))

    async def settle(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the values the program asked for; how many never came."""
        pending = [fut for fut in self._slots.values() if not fut.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        return sum(not fut.done() for fut in pending)

    def close(self) -> None:
        """Every wait still pending ends (cancelled)."""
        for key in list(self._takers):
            _call(self._untake(key), asyncio.CancelledError())
        for fut in self._slots.values():
            if not fut.done():
                fut.cancel()

    def _slot(self, key: Key) -> asyncio.Future:
        fut = self._slots.get(key)
        if fut is None:
            fut = self._slots[key] = asyncio.get_running_loop().create_future()
        return fut


def _call(then: Then, result: Any) -> None:
    """Hand a result to a taker; its failure is a bug to log, never the delivering push's."""
    try:
        then(result)
    except Exception:  # noqa: BLE001
        logger.exception("handing out a received value failed")
