"""Which peers are gone: they said goodbye (finished or aborted), stopped answering, or diverged.

The receiver asks ``PeerWatch`` before and while it waits for a value from a peer. While anything
waits on a peer, the peer's receiver is pinged every ``liveness_timeout_in_ms / 5``. A peer whose
connection fails for ``liveness_timeout_in_ms`` is lost: its port refuses (process died), or the
link's keepalive closed a silent connection (machine gone or frozen; for gRPC see
``grpc_link.liveness_options``). A peer that is only slow (its task runs for an hour, its Python
answers pings late) keeps its connection, so it is waited for; one that answers no ping at all
over a live connection is lost after ``timeout_in_ms``. A peer never seen yet (no barrier at
``fed.init``, no answer, no push) may still be starting: it gets ``timeout_in_ms`` too.
Pings also compare the running digests of both parties' calls (``call_log``), so two programs
that diverged and now wait on each other are told where.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

from fed._config import FedConfig
from fed._exceptions import FedDivergenceError, FedError, FedPeerLostError, FedRemoteError
from fed._security.untrusted import clip
from fed._transport import link, wire
from fed._transport.call_log import CallLog, first_difference
from fed._transport.link import Connection, LinkError, ProofError

logger = logging.getLogger("fed.receiver")


@dataclasses.dataclass(frozen=True)
class Gone:
    """Why a peer will send nothing more: ``finished`` its program, ``aborted`` it, ``lost``, or
    ``diverged`` (its program made a different call than this party's)."""

    kind: str
    error_type: str = ""
    cause: str | None = None


class PeerWatch:
    """Goodbyes received and pings sent, per peer; ``on_gone(party)`` is called once per peer."""

    def __init__(self, config: FedConfig, calls: CallLog, on_gone: Callable[[str], None],
                 waits: Callable[[str], list[tuple[str, int]]] = lambda party: [],
                 on_will_not_come: Callable[[str, list[str], int], None] = lambda party, ids, calls: None) -> None:
        self._config = config
        self._calls = calls
        self._on_gone = on_gone
        self._waits = waits  # party -> values this party waits for from it (object id, calls when asked)
        self._on_will_not_come = on_will_not_come
        self._gone: dict[str, Gone] = {}
        self._watches: dict[str, asyncio.Task] = {}
        self._link: link.Outbound | None = None  # made on first use, on the receiver's event loop
        self._seen: set[str] = set()  # peers known to have started
        self._contact: dict[str, float] = {}  # when each peer last reached this party (ping, push, bye)

    def seen(self, party: str) -> None:
        """``party`` reached this party (it pinged, pushed or said goodbye, or answered at
        ``fed.init``): it has started, and it is alive now, whatever this party's pings to it met so far."""
        self._seen.add(party)
        self._contact[party] = time.monotonic()

    def has_seen(self, party: str) -> bool:
        return party in self._seen

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
        short, long = comm.liveness_timeout_in_ms / 1000, comm.timeout_in_ms / 1000
        interval = short / 5
        last_answer = time.monotonic()
        cut_since: float | None = None  # when the current run of failed connections began
        while waiting() and party not in self._gone:
            asked = time.monotonic()
            try:
                answer = await self._answers(party, timeout=interval * 2)
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop watching the peer
                logger.warning("pinging %s failed: %s: %s", party, type(exc).__name__, clip(str(exc)))
                answer = "unreachable"
            now = time.monotonic()
            if answer == "yes":  # it has started; its answers end a run of failures below
                last_answer = now
                self._seen.add(party)
            # Refused or broken connections (keepalive closes a silent one) for the liveness
            # timeout without a break say the peer is gone. A ping answered late over a live
            # connection says little (a busy peer on a loaded machine; its connection may also
            # drop and come back), nor does silence from a peer that may still be starting:
            # those count only after timeout_in_ms without an answer.
            cut_since = (cut_since or asked) if answer == "unreachable" else None
            if cut_since is not None:  # a run of failures counts only from the peer's last sign of life
                cut_since = max(cut_since, self._contact.get(party, cut_since))
            if cut_since is not None and party in self._seen and now - cut_since > short:
                patience = short
            elif now - last_answer > long:
                patience = long
            else:
                await asyncio.sleep(interval)
                continue
            self.mark_gone(party, Gone("lost", cause=f"no answer from {self._config.addresses[party]} "
                                                     f"for {patience:g} s"))
            return

    async def _answers(self, party: str, timeout: float) -> str:
        """``yes`` if ``party``'s receiver for this job answers within ``timeout`` s, ``late`` if the
        ping timed out, ``unreachable`` if the connection failed, someone else answered, or the
        answer was malformed (it counts as no answer; the watch goes on)."""
        cfg = self._config
        if self._link is None:
            self._link = link.outbound(cfg)
        connection = self._link.connect(party, link.LIVENESS)
        mine = len(self._calls)
        waits = self._waits(party)
        try:
            who, job, theirs, digest, never = wire.decode_ping_answer(await connection.unary(
                link.PING, wire.encode_ping(cfg.job_name, cfg.party, mine, waits), timeout=timeout))
        except LinkError as exc:
            # Late over a live connection: the peer may be busy. Late while (re)connecting:
            # nothing answers at all.
            return "late" if exc.code == "DEADLINE_EXCEEDED" and connection.ready() else "unreachable"
        except wire.WireError as exc:
            logger.info("malformed ping answer from %s: %s", party, exc)
            return "unreachable"
        except ProofError as exc:  # someone else answers at the peer's address
            logger.warning("the server at %s is not party %r: %s", cfg.addresses[party], party, exc)
            return "unreachable"
        if who != party or job != cfg.job_name:
            return "unreachable"
        both = min(mine, theirs)
        if both and digest != str(self._calls.digest(both)):
            await self._diverged(party, connection, both)
        never = sorted({waits[i][0] for i in never if i < len(waits)})  # only what this party asked
        if never:
            self._on_will_not_come(party, never, theirs)
        return "yes"

    async def _diverged(self, party: str, connection: Connection, upto: int) -> None:
        """Find the first call where ``party``'s program differs from this one's, and give up on it."""
        cfg = self._config

        async def ask(**which: int) -> bytes:
            return await connection.unary(link.CALLS, wire.encode_calls_request(cfg.job_name, cfg.party, **which),
                                          timeout=10)
        try:
            theirs = wire.decode_calls_digests(await ask(upto=upto), upto)
            first = first_difference(self._calls.digests(upto), theirs)
            there = wire.decode_calls_fingerprint(await ask(call=first))
        except (LinkError, wire.WireError, ProofError) as exc:
            logger.warning("could not compare calls with %s: %s", party, clip(str(exc)))
            return
        here = self._calls.fingerprint(first) or "(not kept)"
        there = clip(there, 300) if there is not None else "(not kept)"
        me = self._config.party
        cause = (f"the programs of parties {me!r} and {party!r} diverged at call {first}: "
                 f"{me!r} made {here}, {party!r} made {there}")
        self.mark_gone(party, Gone("diverged", cause=cause))
        try:  # tell the peer too, in case it is not pinging this party right now
            await connection.gated(link.BYE, wire.encode_bye(cfg.job_name, me, "diverged", "", cause), timeout=2)
        except (LinkError, ProofError):
            pass

    async def stop(self) -> None:
        for task in self._watches.values():
            task.cancel()
        self._watches.clear()
        if self._link is not None:
            await self._link.close()


def gone_error(me: str, src: str, gone: Gone, object_id: str, fingerprint: str) -> FedError:
    """The error for a wait at party ``me`` on a value from ``src``, which is gone."""
    what = f"value {object_id} ({fingerprint}) that party {me!r} waits for"
    if gone.kind == "finished":
        return FedDivergenceError(f"party {src!r} finished its program without sending {what}: "
                                  "the parties' programs diverged (they made different calls)")
    if gone.kind == "diverged":
        return FedDivergenceError(f"{gone.cause}; {what} will not come")
    if gone.kind == "aborted":
        detail = f": {gone.cause}" if gone.cause else ""
        return FedRemoteError(src, gone.error_type or "Exception", f"its program stopped before sending {what}{detail}")
    return FedPeerLostError(f"party {src!r} is lost ({gone.cause}); {what} will not come. Did its process die?")


def ping_answer(config: FedConfig, calls: CallLog, theirs: int, never: list[int] = ()) -> bytes:
    """Who answers (party, job) and, if the pinging party shared ``theirs`` calls, this party's
    digest at the length both know; ``never``: the places in the ping's waits of the values that
    will not come."""
    both = min(theirs, len(calls))
    if both > 0:
        return wire.encode_ping_answer(config.party, config.job_name, len(calls), str(calls.digest(both)), never)
    return wire.encode_ping_answer(config.party, config.job_name, len(calls) if never else None, None, never)


def calls_answer(calls: CallLog, upto: int | None, call: int | None) -> bytes | None:
    """The digests of the first ``upto`` calls, or the fingerprint of ``call``; None if out of range."""
    if upto is not None and 0 < upto <= len(calls):
        return wire.encode_calls_digests(calls.digests(upto))
    if call is not None and 0 < call <= len(calls):
        return wire.encode_calls_fingerprint(calls.fingerprint(call))
    return None
