"""Parties that accept no connections: their peers' calls to them ride on calls they opened.

An outbound-only party (``cluster[party]['outbound_only']``) listens on no port. Its receiver
(``standbys.Dialer``) keeps **standby** calls open to each peer, over the job's link (and its HTTP proxy,
if it has one): streams whose first frame says who offers them (``wire.encode_standby``). A peer
that has a call for it (a push, a lane, a ping, a goodbye) takes an idle standby (``Outbound``)
and carries the call on it: it writes the method, then the call's frames as it would write them
to a server, and ``wire.END_OF_WRITING`` where it would end its writing; the outbound-only party
serves the call with its own ``Inbox`` and writes back each frame it would send as
``CARRIED_FRAME`` + frame, then ``CARRIED_DONE`` when the call ended well or a refusal frame
(``wire.encode_lane_refusal``) in place of a status. Then the standby ends, and the dialer has
opened another meanwhile.

Every guarantee holds as for a call the peer dials: the peer knows the standby comes from the
outbound-only party by the client certificate of its connection (checked like a push's
source); the outbound-only party knows it reached the peer by the peer's proof of identity on the
standby's answer (``link``), before it serves anything on it; what is carried is served by the
same ``Inbox``, with its caps, decoding and liveness. A party keeps at most ``MAX_STANDBYS`` of a
peer's standbys (idle or carrying) and the outbound-only party opens at most that many to a peer,
``IDLE`` of them idle.

The peer's sender and receiver must share a process (the standbys reach its receiver, its sender
uses them): ``fed.init`` refuses a resource label for either when a peer is outbound-only.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from fed._transport import link, wire
from fed._transport.link import Broken, InStream, LinkError, Refusal, Refused

logger = logging.getLogger("fed.receiver")

IDLE = 4            # idle standbys an outbound-only party keeps open to each peer
MAX_STANDBYS = 96   # standbys of one peer, idle or carrying a call, at either end


# ---- the listening end: standbys a peer offers, used for this party's calls to it ----

class _Standby:
    """A peer's standby, held by its call's handler: ``finished`` when this party's call on it is
    done, ``gone`` once the handler ended (the call broke, or the server stops)."""

    def __init__(self, stream: InStream) -> None:
        self.stream = stream
        loop = asyncio.get_running_loop()
        self.finished, self.gone = loop.create_future(), loop.create_future()

    def finish(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)

    async def use(self, op: Any) -> Any:
        """Run a read or write of the standby's stream from another task than its handler: a
        ``LinkError`` (INTERNAL, transient) if the stream fails or the handler ends meanwhile."""
        if self.gone.done():
            op.close()  # never started
            raise LinkError("INTERNAL", "the standby call broke")
        task = asyncio.ensure_future(op)
        try:
            await asyncio.wait((task, self.gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            raise LinkError("INTERNAL", "the standby call broke")
        try:
            return task.result()
        except Broken:
            raise LinkError("INTERNAL", "the standby call broke") from None


class Pool:
    """The standbys one outbound-only peer keeps open to this party."""

    def __init__(self) -> None:
        self._idle: collections.deque[_Standby] = collections.deque()
        self._held = 0
        self._offered: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._offered is None:
            self._offered = asyncio.Event()
        return self._offered

    async def hold(self, stream: InStream) -> None:
        """Keep a peer's standby until a call of this party's has used it (or it ends)."""
        if self._held >= MAX_STANDBYS:
            raise Refused(Refusal.BUSY, f"this party holds {MAX_STANDBYS} standby calls of yours already")
        standby = _Standby(stream)
        self._held += 1
        self._idle.append(standby)
        self._event().set()
        try:
            await standby.finished
        finally:
            standby.gone.set_result(None)
            self._held -= 1
            if standby in self._idle:
                self._idle.remove(standby)
            self._event().set()  # a call waiting for a standby looks again (``take``)

    def ready(self) -> bool:
        return bool(self._idle)

    async def take(self, timeout: float, wait: bool) -> _Standby:
        """An idle standby, waiting for one up to ``timeout`` (DEADLINE_EXCEEDED). Not ``wait``:
        ``LinkError`` UNAVAILABLE at once if the peer holds no standby here at all (it is not
        connected, as a refused connection would say); if it holds some but all carry calls, the
        peer is there and opens the next at once, so that is waited for."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._idle:
            if not wait and not self._held:
                raise LinkError("UNAVAILABLE", "the outbound-only peer has no standby call open to this party")
            event = self._event()
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise LinkError("DEADLINE_EXCEEDED", "no standby call from the outbound-only peer "
                                f"within {timeout:g} s") from None
        return self._idle.popleft()


_pools: dict[tuple[str, str, str], Pool] = {}


def pool(job: str, party: str, peer: str) -> Pool:
    """The standbys ``peer`` keeps open to ``party`` in ``job``, in this process."""
    return _pools.setdefault((job, party, peer), Pool())


def forget(job: str, party: str) -> None:
    """The job ended at ``party``: its pools go (a later job of the same name starts afresh)."""
    for key in [k for k in _pools if k[:2] == (job, party)]:
        del _pools[key]


async def hold_standby(config: Any, stream: InStream, src: str) -> None:
    """A standby from ``src`` (its first frame checked by the inbox), held until used."""
    if src not in config.outbound_only:
        raise Refused(Refusal.NOT_PERMITTED, "standby calls are taken only from outbound-only parties")
    await pool(config.job_name, config.party, src).hold(stream)


class _Carried:
    """This party's call carried on a peer's standby: the sending end of a stream (``link.OutStream``)."""

    def __init__(self, standby: _Standby) -> None:
        self._standby = standby
        self._ended = False

    async def start(self, method: str) -> None:
        await self.write(wire.encode_carried_method(method))

    async def write(self, frame: bytes) -> None:
        if self._ended:
            raise LinkError("INTERNAL", "the carried call has ended")
        try:
            await self._standby.use(self._standby.stream.send(frame))
        except LinkError:
            self.cancel()
            raise

    async def done_writing(self) -> None:
        await self.write(wire.END_OF_WRITING)

    async def read(self) -> bytes | None:
        """The peer's next frame of the call; None once it ended well; ``LinkError`` for its refusal."""
        if self._ended:
            return None
        try:
            message = await self._standby.use(self._standby.stream.next())
        except BaseException:
            self.cancel()
            raise
        if message is None:
            self.cancel()
            raise LinkError("INTERNAL", "the standby call ended in the middle of a carried call")
        kind, frame = message[:1], message[1:]
        if kind == wire.CARRIED_FRAME:
            return frame
        self.cancel()
        if kind == wire.CARRIED_DONE:
            return None
        try:
            _, refusal = wire.decode_lane_answer(message)
        except wire.WireError:
            refusal = None
        if refusal is None:
            raise LinkError("INTERNAL", "malformed frame from the outbound-only peer")
        raise LinkError(*refusal)

    def cancel(self) -> None:
        self._ended = True
        self._standby.finish()


class Connection:
    """Calls to an outbound-only peer, each carried on one of its standbys (``link.Connection``)."""

    def __init__(self, standbys: Pool) -> None:
        self._standbys = standbys

    async def _open(self, method: str, timeout: float, wait: bool) -> _Carried:
        carried = _Carried(await self._standbys.take(timeout, wait))
        await carried.start(method)
        return carried

    async def _one(self, method: str, request: bytes, timeout: float, wait: bool, end: bool) -> bytes:
        async def call() -> bytes:
            carried = await self._open(method, timeout, wait)
            try:
                await carried.write(request)
                if end:
                    await carried.done_writing()
                answer = await carried.read()
                if answer is None:
                    raise LinkError("INTERNAL", "the outbound-only peer ended the call without an answer")
                return answer
            finally:
                carried.cancel()
        try:
            return await asyncio.wait_for(call(), timeout)
        except asyncio.TimeoutError:
            raise LinkError("DEADLINE_EXCEEDED", "Deadline Exceeded") from None

    async def unary(self, method: str, request: bytes, timeout: float, wait_for_ready: bool = False) -> bytes:
        return await self._one(method, request, timeout, wait_for_ready, end=False)

    async def gated(self, method: str, request: bytes, timeout: float) -> bytes:
        # The standby came over a connection whose client certificate names the peer: no proof is
        # due before the request goes.
        return await self._one(method, request, timeout, False, end=True)

    async def stream(self, method: str, timeout: float) -> _Carried:
        try:
            return await asyncio.wait_for(self._open(method, timeout, True), timeout)
        except LinkError as exc:
            if exc.code == "DEADLINE_EXCEEDED":
                raise asyncio.TimeoutError() from None
            raise

    def ready(self) -> bool:
        return self._standbys.ready()


class Outbound:
    """The job's link, but an outbound-only peer is reached over its standbys (``link.Outbound``)."""

    def __init__(self, config: Any, inner: Any) -> None:
        self._config, self._inner = config, inner
        self.streams = inner.streams

    def connect(self, dst: str, purpose: str = link.VALUES) -> Any:
        if dst in self._config.outbound_only:
            return Connection(pool(self._config.job_name, self._config.party, dst))
        return self._inner.connect(dst, purpose)

    async def presented_names(self, dst: str) -> frozenset[str] | None:
        if dst in self._config.outbound_only:
            return None
        return await self._inner.presented_names(dst)

    async def close(self) -> None:
        await self._inner.close()
