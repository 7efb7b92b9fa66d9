"""Which peers are gone: they said goodbye (finished or aborted), or stopped answering pings.

The receiver asks ``PeerWatch`` before and while it waits for a value from a peer. While anything
waits on a peer, the peer's receiver is pinged every ``liveness_timeout_in_ms / 5``; a peer that
has not answered for ``liveness_timeout_in_ms`` is lost. A peer that is only slow (its task runs
for an hour) keeps answering pings, so it is waited for. A peer never seen yet (no barrier at
``fed.init``, no answer, no push) may still be starting: it gets ``timeout_in_ms`` instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

import grpc

from fed._config import FedConfig
from fed._transport import grpc_setup, wire

logger = logging.getLogger("fed.receiver")


@dataclasses.dataclass(frozen=True)
class Gone:
    """Why a peer will send nothing more: ``finished`` its program, ``aborted`` it, or ``lost``."""

    kind: str
    error_type: str = ""
    cause: str | None = None


class PeerWatch:
    """Goodbyes received and pings sent, per peer; ``on_gone(party)`` is called once per peer."""

    def __init__(self, config: FedConfig, on_gone: Callable[[str], None]) -> None:
        self._config = config
        self._on_gone = on_gone
        self._gone: dict[str, Gone] = {}
        self._watches: dict[str, asyncio.Task] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._seen: set[str] = set()

    def seen(self, party: str) -> None:
        """``party`` is known to have started (it answered or pushed)."""
        self._seen.add(party)

    def gone(self, party: str) -> Gone | None:
        return self._gone.get(party)

    def mark_gone(self, party: str, why: Gone) -> None:
        if party in self._gone:
            return
        self._gone[party] = why
        logger.warning("party %r is gone (%s%s)", party, why.kind, f": {why.error_type}" if why.error_type else "")
        self._on_gone(party)

    def watch(self, party: str, waiting: Callable[[], bool]) -> None:
        """Ping ``party`` for as long as ``waiting()`` is true (one watch per peer)."""
        task = self._watches.get(party)
        if task is None or task.done():
            self._watches[party] = asyncio.get_running_loop().create_task(self._watch(party, waiting))

    async def _watch(self, party: str, waiting: Callable[[], bool]) -> None:
        comm = self._config.comm
        interval = comm.liveness_timeout_in_ms / 1000 / 5
        last_answer = time.monotonic()
        while waiting() and party not in self._gone:
            patience = (comm.liveness_timeout_in_ms if party in self._seen else comm.timeout_in_ms) / 1000
            if await self._answers(party, timeout=interval * 2):
                last_answer = time.monotonic()
                self._seen.add(party)
            elif time.monotonic() - last_answer > patience:
                self.mark_gone(party, Gone("lost", cause=f"no answer from {self._config.addresses[party]} "
                                                         f"for {patience:g} s"))
                return
            await asyncio.sleep(interval)

    async def _answers(self, party: str, timeout: float) -> bool:
        """Whether ``party``'s receiver for this job answers a ping within ``timeout`` s."""
        cfg = self._config
        channel = self._channels.get(party)
        if channel is None:
            channel = grpc_setup.open_channel(cfg.addresses[party], party, cfg.tls, cfg.comm.chunk_size_in_bytes)
            self._channels[party] = channel
        try:
            answer = await channel.unary_unary(wire.PING_METHOD)(wire.encode_ping(cfg.job_name, cfg.party),
                                                                 timeout=timeout)
            body = wire.decode_json(answer, "ping answer")
        except (grpc.aio.AioRpcError, wire.WireError):
            return False
        return body.get("party") == party and body.get("job") == cfg.job_name

    async def stop(self) -> None:
        for task in self._watches.values():
            task.cancel()
        for channel in self._channels.values():
            await channel.close()
        self._watches.clear()
        self._channels.clear()
