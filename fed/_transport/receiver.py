"""The receiver: serves peers' pushes over the job's link and hands values to this party (see ``receiver_host``)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import ray

from fed import _logs as logs
from fed._config import FedConfig
from fed._exceptions import FedDivergenceError
from fed._transport import link, reverse
from fed._transport.awaited import Awaited
from fed._transport.call_log import CallLog
from fed._transport.inbox import Inbox
from fed._transport.liveness import PeerWatch, gone_error
from fed._transport.mailbox import Arrived, Mailbox
from fed._transport.metrics import Meter, node_id
from fed._transport.pushed import Pushed

logger = logging.getLogger("fed.receiver")

# The receiver actor's Ray concurrency: no limit in practice. Its calls from the driver wait for
# values; were they queued, the values they wait for could be refused for lack of room (held by
# values whose calls are queued), and the control calls (stats, stop) would queue behind them.
# A waiting call costs about 50 KB of the actor's memory whatever this number is.
CONCURRENCY = 1_000_000
# Over a link that fetches values, a wait on a peer that is gone ends this long after, unless the
# value arrives: what the peer sent before its goodbye is at this party's end of the link already.
FETCH_GRACE_S = 2.0


def _restarted() -> bool:
    """Whether Ray restarted this receiver actor (``proxy_max_restarts``) rather than creating it."""
    if not ray.is_initialized():
        return False
    try:
        context = ray.get_runtime_context()
        return context.get_actor_id() is not None and bool(context.was_current_actor_reconstructed)
    except Exception:  # noqa: BLE001 - not in an actor (a receiver made directly, in tests)
        return False


class Receiver:
    """Serves the party's listening address for one job (its ``Inbox`` handles the peers' messages).

    Values are kept in a ``Mailbox`` under ``(source party, object id)`` until this party asks for
    them with ``get`` or ``get_many``; a second push of a key is acknowledged as a duplicate and
    dropped. A push the mailbox has no room for is refused as busy with ``no_room``, which the
    sender retries for as long as it gets that answer, so an honest peer waits while a flood of
    values nobody consumes stops at the cap.
    """

    def __init__(self, config: FedConfig) -> None:
        logs.setup(config.logging_level)  # in its own actor process too
        self._config = config
        comm = config.comm
        self._meter = Meter(config.job_name, config.party, "received")
        self._box = Mailbox(config.party, comm.max_buffered_bytes, comm.max_wait_in_ms, self._meter)
        self._calls = CallLog()  # this party's calls, as far as its driver has shared them
        self._pushed = Pushed()  # and its pushes
        self._awaited = Awaited(config.party, self._box)  # and when it asked for what it waits for
        self._peers = PeerWatch(config, self._calls, self._peer_gone, self._awaited.oldest,
                                self._awaited.will_not_come)
        self._inbox = Inbox(config, self._box, self._meter, self._peers, self._calls, self._pushed)
        self._server: link.Server | None = None
        self._calls_gap_logged = False
        if _restarted():  # proxy_max_restarts: Ray made this actor again after its process died
            try:
                self._restart = asyncio.get_running_loop().create_task(self._serve_again())
            except RuntimeError:  # a Ray that runs constructors outside the actor's event loop
                logger.error("the receiver of party %r was restarted but cannot listen again on this Ray "
                             "version; the job's pushes to it will fail", config.party)

    async def _serve_again(self) -> None:
        """After a restart: listen again. What the dead receiver held is lost (its waits failed
        with the actor), and the calls the driver shared are unknown here, so comparing calls
        with the peers and telling them which values will not come stay off until the job ends."""
        try:
            await self.start()
        except Exception as exc:  # noqa: BLE001 - nothing else would report it
            logger.error("the restarted receiver of party %r cannot listen again: %s", self._config.party, exc)
            return
        logger.warning("the receiver of party %r was restarted (proxy_max_restarts) and listens again on %s; "
                       "values it held before are lost", self._config.party, self._config.listen_address)

    async def relay(self, dst: str, data: bytes, upstream: Any, downstream: Any) -> Any:
        """The sender's message to ``dst`` through this receiver's proxy (``receiver_sender_proxy_cls``)."""
        return await self._server.relay(dst, data, upstream, downstream)

    def pid(self) -> int:
        """The receiver's process (for operators, and tests that kill it)."""
        return os.getpid()

    async def start(self) -> str:
        """Bind the listening address and serve; a taken port is an ``OSError``, never shared."""
        self._server = await link.serve(self._config, self._inbox)
        return self._config.listen_address

    async def stop(self, grace: float = 1.0) -> None:
        """Stop serving; pending waits for values fail."""
        await self._peers.stop()
        self._inbox.end_lanes()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        if self._config.outbound_only:
            reverse.forget(self._config.job_name, self._config.party)
        self._box.close()
        self._inbox.close()
        self._meter.mirror()  # what the Ray metrics have not been given yet

    async def get(self, src: str, object_id: str, fingerprint: str, asked_at: int | None = None,
                  sized: bool = False) -> Any:
        """Wait for the value ``src`` pushes under ``object_id`` and return it (once). ``asked_at``:
        how many calls this party's program had made when it asked (``fed._transport.pushed``).
        ``sized``: return ``(value, payload bytes)``."""
        key = self._ask(src, object_id, fingerprint, asked_at)
        try:
            arrived = await self._box.take(key, fingerprint)
        finally:
            self._awaited.done(key)
        return self._handed(key, fingerprint, arrived, sized)

    def get_soon(self, src: str, object_id: str, fingerprint: str, asked_at: int | None,
                 then: Callable[[Any], None]) -> None:
        """``get`` for a driver thread that waits: ``then`` is given ``(value, payload bytes)``, or
        the exception that ends the wait, inside the call that delivers the value (no turn of the
        event loop in between). On the loop's thread."""
        key = self._ask(src, object_id, fingerprint, asked_at)

        def handed(arrived: Any) -> None:
            self._awaited.done(key)
            if not isinstance(arrived, BaseException):
                try:
                    arrived = self._handed(key, fingerprint, arrived, True)
                except Exception as exc:  # noqa: BLE001 - the wait's outcome
                    arrived = exc
            then(arrived)
        self._box.take_soon(key, fingerprint, handed)

    def _ask(self, src: str, object_id: str, fingerprint: str, asked_at: int | None) -> tuple[str, str]:
        """The program asks for a value: checks, and the watch on its peer while it waits."""
        key = (src, object_id)
        box = self._box
        if box.was_taken(key):
            raise RuntimeError(f"value {object_id} from {src!r} was already handed out")
        if not box.has(key):
            gone = self._peers.gone(src)
            if gone is not None and not self._fetches:
                raise gone_error(self._config.party, src, gone, object_id, fingerprint)
            if gone is not None:
                self._fail_soon(key, fingerprint)
            else:
                if asked_at is not None:
                    self._awaited.asked(key, asked_at)
                self._peers.watch(src, lambda: box.waits_for(src))
            if self._server is not None:
                self._server.wanted(src, object_id)
        return key

    def _handed(self, key: tuple[str, str], fingerprint: str, arrived: Arrived, sized: bool) -> Any:
        """What a wait for ``key`` returns: its value, or the error it carries or the divergence it shows."""
        if arrived.fingerprint != fingerprint:
            raise FedDivergenceError(
                f"party {key[0]!r} sent value {key[1]} for call {arrived.fingerprint!r}, but this "
                f"party's program made call {fingerprint!r} there: the parties' programs diverged"
            )
        if arrived.error is not None:
            raise arrived.error
        return (arrived.value, arrived.nbytes) if sized else arrived.value

    async def get_many(self, wanted: list[tuple[str, str, str, int]]) -> list[Any]:
        """``get`` of several values in one Ray call (the driver asks so for the values one call
        consumes): their values in order, or the first error as soon as it comes."""
        takes = [asyncio.ensure_future(self.get(*w)) for w in wanted]
        for take in takes:
            take.add_done_callback(_retrieved)  # errors after the first are not worth a warning
        return list(await asyncio.gather(*takes))

    @property
    def _fetches(self) -> bool:
        """Whether the link fetches values (``Server.wanted``) rather than being pushed them."""
        return self._server is not None and self._server.fetches

    def _peer_gone(self, party: str) -> None:
        """``party`` will send nothing more: every wait on it ends with an error that says why."""
        for key, fingerprint in list(self._box.waiting.items()):
            if key[0] == party:
                self._fail_soon(key, fingerprint)

    def _fail_soon(self, key: tuple[str, str], fingerprint: str) -> None:
        """End the wait on ``key``, whose peer is gone: at once, or, over a link that fetches values,
        after ``FETCH_GRACE_S`` unless the value comes (a peer that finished pushed its values before
        its goodbye, but they may still be on the way to this party)."""
        src, object_id = key
        arrived = Arrived(fingerprint, error=gone_error(self._config.party, src, self._peers.gone(src), object_id,
                                                        fingerprint))
        if self._fetches:
            asyncio.get_running_loop().call_later(FETCH_GRACE_S, self._box.deliver, key, arrived)
        else:
            self._box.deliver(key, arrived)

    async def settle(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the values this party asked for; how many never came."""
        return await self._box.settle(timeout)

    def heard_from(self, parties: list[str]) -> list[str]:
        """Which of ``parties`` have reached this party: pinged it, pushed to it or said goodbye."""
        return [party for party in parties if self._peers.has_seen(party)]

    def peers_started(self, parties: list[str]) -> None:
        """These peers answered at ``fed.init``: from now on, silence for ``liveness_timeout_in_ms`` is loss."""
        for party in parties:
            self._peers.seen(party)

    def counts(self) -> dict[str, int]:
        """Pushes taken so far (values stored, duplicates dropped) and payload bytes buffered now."""
        peers = self._meter.snapshot().values()
        return {"values": sum(p["values"] for p in peers), "duplicates": sum(p["duplicates"] for p in peers),
                "buffered_bytes": self._box.held_bytes}

    def stats(self) -> dict[str, Any]:
        """What this receiver took, per peer; what it refused; what it holds that was not consumed
        yet (values received or being received, and what they cost); how many values the program
        waits for that have not arrived."""
        return {"peers": self._meter.snapshot(), "refused": self._inbox.refused,
                "waiting_values": self._box.held_values, "waiting_bytes": self._box.held_bytes,
                "waiting_peak": self._box.peak_bytes, "awaited": len(self._box.waiting),
                "node": node_id()}

    def record_calls(self, start: int, digests: bytes, fingerprints: list[str],
                     started: list[tuple[str, str]] = (), failed: list[tuple[str, str]] = ()) -> None:
        """The driver shares the calls its program made since it last did (see ``call_log``), and
        the pushes it started or that failed (``pushed``): the pushes first, as they were made first."""
        self._pushed.add(started, failed)
        try:
            self._calls.extend(start, digests, fingerprints)
        except ValueError as exc:  # a restarted receiver: the calls before its restart are unknown here
            if not self._calls_gap_logged:
                logger.warning("%s; comparing calls with the peers is off from now on", exc)
                self._calls_gap_logged = True

def _retrieved(take: asyncio.Future) -> None:
    if not take.cancelled():
        take.exception()


