"""An outbound-only party's receiver end: the standby calls it keeps open to each peer, and the
calls its peers carry on them, served by its inbox (``reverse`` tells the whole of it)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fed._security.untrusted import clip
from fed._transport import link, wire
from fed._transport.link import Broken, Caller, LinkError, ProofError, Refusal, Refused
from fed._transport.reverse import IDLE, MAX_STANDBYS

logger = logging.getLogger("fed.receiver")

_RETRY_S = (0.1, 2.0)  # the backoff after a standby could not be opened


class _CarriedIn:
    """A call carried on a standby, as the inbox reads it (``link.InStream``)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def next(self) -> bytes | None:
        try:
            frame = await self._stream.read()
        except LinkError as exc:
            raise Broken(f"the standby call broke ({exc.code})") from None
        if frame is None:
            raise Broken("the standby call ended")
        return None if frame == wire.END_OF_WRITING else frame

    async def send(self, frame: bytes) -> None:
        try:
            await self._stream.write(wire.CARRIED_FRAME + frame)
        except LinkError as exc:
            raise Broken(f"the standby call broke ({exc.code})") from None


class Dialer:
    """An outbound-only party's receiver end (``link.Server``): ``IDLE`` standbys open to each
    peer at all times, at most ``MAX_STANDBYS`` a peer in all, each call they carry served by
    ``inbox``."""

    fetches = False

    def __init__(self, config: Any, inbox: link.Inbox, outbound: Any) -> None:
        self._config, self._inbox, self._outbound = config, inbox, outbound
        self._tasks: set[asyncio.Task] = set()
        self._slots = {peer: asyncio.Semaphore(MAX_STANDBYS) for peer in config.peers}
        for peer in config.peers:
            for _ in range(IDLE):
                self._spawn(self._keep(peer))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep(self, peer: str) -> None:
        """Keep one idle standby open to ``peer``: when the peer uses it, serve the call it
        carries (holding its slot) and open the next."""
        cfg = self._config
        delay = _RETRY_S[0]
        while True:
            await self._slots[peer].acquire()
            served = False
            try:
                stream = await self._outbound.connect(peer, link.STANDBYS).stream(link.STANDBY,
                                                                                  cfg.comm.timeout_in_ms / 1000)
                try:
                    await stream.write(wire.encode_standby(cfg.job_name, cfg.party))
                    first = await stream.read()
                except BaseException:
                    stream.cancel()
                    raise
                if first is None:  # the peer ended it: stopping, or it holds enough
                    stream.cancel()
                    raise LinkError("UNAVAILABLE", "the peer ended a standby call")
                self._spawn(self._serve(peer, stream, first))
                served, delay = True, _RETRY_S[0]
            except (LinkError, asyncio.TimeoutError) as exc:
                logger.debug("standby to %s: %s", peer, exc)
            except ProofError as exc:
                logger.warning("the server at %s is not party %r: %s", cfg.addresses[peer], peer, exc)
            finally:
                if not served:
                    self._slots[peer].release()
            if not served:
                await asyncio.sleep(delay)
                delay = min(2 * delay, _RETRY_S[1])

    async def _serve(self, peer: str, stream: Any, first: bytes) -> None:
        """Serve the call a standby carries, then end the standby."""
        cfg = self._config
        names = frozenset({cfg.tls.name_of(peer)}) if cfg.tls is not None else frozenset()
        caller = Caller(f"{cfg.addresses[peer]} (standby)", names)
        try:
            method, request = await self._request(stream, first)
            answer = await link.handler(self._inbox, method)(request, caller)
            if answer:
                await stream.write(wire.CARRIED_FRAME + answer)
            await stream.write(wire.CARRIED_DONE)
            await self._ended(stream)
        except Broken:
            pass
        except Refused as refused:
            await self._refuse(stream, refused)
        except LinkError:
            pass
        except Exception as exc:  # noqa: BLE001 - a bug here: the peer learns nothing of it
            await self._refuse(stream, link.internal_error(exc, caller))
        finally:
            stream.cancel()
            self._slots[peer].release()

    async def _request(self, stream: Any, first: bytes) -> tuple[str, Any]:
        """The carried call's method, and what its handler takes: the stream, or (a unary call)
        its one request, which must come within ``timeout_in_ms``. ``Refused`` (logged here: the
        inbox logs what it refuses itself) for anything else."""
        patience = self._config.comm.timeout_in_ms / 1000
        try:
            method = wire.decode_carried_method(first, link.CARRIED)
            request: Any = _CarriedIn(stream)
            if method not in link.STREAMED:
                request = await asyncio.wait_for(request.next(), patience)
                if request is None:
                    raise Refused(Refusal.MALFORMED, "a carried call without its request")
            return method, request
        except wire.WireError as exc:
            refused = Refused(Refusal.MALFORMED, str(exc))
        except asyncio.TimeoutError:
            refused = Refused(Refusal.STALLED, f"no request for {patience:g} s")
        except Refused as exc:
            refused = exc
        logger.warning("refused a call carried on a standby: %s", clip(str(refused), 600))
        raise refused

    async def _refuse(self, stream: Any, refused: Refused) -> None:
        try:
            await stream.write(wire.encode_lane_refusal(refused.kind.value, refused.public, refused.no_room))
            await self._ended(stream)
        except LinkError:
            pass

    async def _ended(self, stream: Any) -> None:
        """Wait (within ``timeout_in_ms``) for the peer to end the standby once it has the last
        frame: ending it here first could drop that frame. Frames it still sends are dropped."""
        async def drain() -> None:
            while await stream.read() is not None:
                pass
        try:
            await stream.done_writing()
            await asyncio.wait_for(drain(), self._config.comm.timeout_in_ms / 1000)
        except (LinkError, asyncio.TimeoutError):
            pass

    def wanted(self, src: str, object_id: str) -> None:
        pass

    async def stop(self, grace: float) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._outbound.close()
