"""The link: what the transport's policy needs from whatever carries bytes between parties.

The sender, the receiver and liveness (the policy: retries and backoff, room, admission, caps,
decoding, liveness, divergence) are written against this interface and import no transport
library. A link carries opaque frames (``wire``) and offers three kinds of call to a peer:

* ``unary``: one request, one answer;
* ``gated``: one request that goes only once the server has proved it is the peer (for requests
  that carry this party's data, such as a goodbye's cause);
* ``stream``: frames both ways: a push (the header and chunks one way, acks and the answer back),
  or a lane (``PUSHES``: small pushes one after another, an answer to each; ``fed._transport.lane``).

Its contract: with TLS, no frame of a ``gated`` call or ``stream`` reaches a server, and no answer
of a ``unary`` call is returned, before the server proved it is the destination party
(``ProofError`` otherwise); a failure is a ``LinkError`` whose ``code`` is one of ``CODES``; on the
serving side the caller's identity (the names its certificate carries) is the link's to establish.

Links are named in ``LINKS``: adding one is one module with ``outbound(config)`` and
``serve(config, inbox)``, and one line there.
"""

from __future__ import annotations

import enum
import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fed._security.server_proof import ProofError
from fed._security.untrusted import clip

logger = logging.getLogger("fed.receiver")

__all__ = ["CODES", "TRANSIENT", "Caller", "Connection", "InStream", "Inbox", "LinkError", "OutStream",
           "ProofError", "Refusal", "Refused", "Server", "outbound", "serve"]

# Calls a receiver serves.
PUSH, PUSH_WHOLE, PUSHES, PING, BYE, CALLS = "Push", "PushWhole", "Pushes", "Ping", "Bye", "Calls"
# A standby: an outbound-only party's call to a peer that the peer uses to carry one of its own
# calls to it (``reverse``).
STANDBY = "Standby"
METHODS = (PUSH, PUSH_WHOLE, PUSHES, PING, BYE, CALLS, STANDBY)
CARRIED = (PUSH, PUSH_WHOLE, PUSHES, PING, BYE, CALLS)  # what a standby may carry
# What a connection is for: values; control messages on a connection of their own (a goodbye must
# not queue behind a large push on a slow link); liveness pings, with keepalive tuned to notice a
# silent peer within seconds.
VALUES, CONTROL, LIVENESS = "values", "control", "liveness"
STANDBYS = "standbys"  # an outbound-only party's standby calls, on a connection of their own

# How a call fails, in the status names RayFed's ``grpc_retry_policy`` speaks; every link maps its
# own failures onto them.
CODES = frozenset({"CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                   "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                   "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                   "UNAUTHENTICATED"})
# Failures that mean "the peer is not reachable right now": worth another try. A connection cut in
# the middle of a stream is INTERNAL.
TRANSIENT = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"})


class LinkError(Exception):
    """A call that failed: ``code`` (one of ``CODES``), ``details`` (the far end's words: untrusted,
    clip before logging), and ``no_room`` when the receiver refused a push only until its program
    consumes values (the sender waits and tries again for as long as it answers so)."""

    def __init__(self, code: str, details: str = "", no_room: bool = False) -> None:
        super().__init__(code, details)
        self.code = code if code in CODES else "UNKNOWN"
        self.details = details
        self.no_room = no_room

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT

    def __str__(self) -> str:
        return f"{self.code}: {self.details}"


class Refusal(enum.Enum):
    """Why a receiver refuses a message, and the code the sender sees for it."""

    MALFORMED = "INVALID_ARGUMENT"      # not a message of the wire format, or not one this party takes
    UNKNOWN_JOB = "NOT_FOUND"
    NOT_PERMITTED = "PERMISSION_DENIED"  # not a peer of this job, or not the party its certificate names
    TOO_LARGE = "RESOURCE_EXHAUSTED"     # over a limit, now and later
    BUSY = "UNAVAILABLE"                 # try again: being received already, or no room until consumed
    STALLED = "DEADLINE_EXCEEDED"        # a push that sent nothing for too long
    INTERNAL = "INTERNAL"                # a fault of the receiver itself (see ``internal_error``)


class Refused(Exception):
    """A message the receiver will not take: ``public`` is fed's own text for the sender (nothing
    the sender sent is echoed), ``detail`` goes to this party's log only (clipped), ``no_room``
    asks the sender to wait for room."""

    def __init__(self, kind: Refusal, public: str, detail: str | None = None, no_room: bool = False) -> None:
        super().__init__(public)
        self.kind = kind
        self.public = public
        self.detail = detail
        self.no_room = no_room

    def __str__(self) -> str:
        return self.public if self.detail is None else f"{self.public} ({self.detail})"


class Broken(Exception):
    """The serving end's stream is gone under it (the connection broke): nothing more can be sent
    or read, and there is no one to answer."""


def internal_error(exc: Exception, caller: Caller) -> Refused:
    """What the sender learns of an unexpected error while serving its call: that it happened, no
    more (its text may hold what the peer sent). This party's log gets it, clipped."""
    logger.error("serving a call from %s failed: %s: %s", clip(caller.address, 100), type(exc).__name__,
                 clip(str(exc), 600), exc_info=exc)
    return Refused(Refusal.INTERNAL, "internal error at the receiver; its log says more")


@dataclass(frozen=True)
class Caller:
    """Who a served call comes from: its address (for logs) and the names its certificate carries
    (``fed._security.identity``; empty without TLS)."""

    address: str
    names: frozenset[str] = frozenset()


class InStream(Protocol):
    """The serving end of a push."""

    async def next(self) -> bytes | None:
        """The next frame from the sender; None when it finished writing (or the connection broke:
        a gRPC stream ends so, and then its handler is cancelled)."""

    async def send(self, frame: bytes) -> None:
        """A frame to the sender (an ack); ``Broken`` if the stream is gone."""


class Inbox(Protocol):
    """What a receiver serves. Each call returns the answer, or raises ``Refused``."""

    async def on_push(self, stream: InStream, caller: Caller) -> bytes: ...
    async def on_push_whole(self, request: bytes, caller: Caller) -> bytes: ...
    async def on_pushes(self, stream: InStream, caller: Caller) -> bytes: ...
    async def on_ping(self, request: bytes, caller: Caller) -> bytes: ...
    async def on_bye(self, request: bytes, caller: Caller) -> bytes: ...
    async def on_calls(self, request: bytes, caller: Caller) -> bytes: ...
    async def on_standby(self, stream: InStream, caller: Caller) -> bytes: ...


HANDLERS = {PUSH: "on_push", PUSH_WHOLE: "on_push_whole", PUSHES: "on_pushes", PING: "on_ping", BYE: "on_bye",
            CALLS: "on_calls", STANDBY: "on_standby"}
STREAMED = frozenset({PUSH, PUSHES, BYE, STANDBY})  # served with an ``InStream``; the others with the request's bytes


def handler(inbox: Inbox, method: str) -> Callable[..., Awaitable[bytes]]:
    """The inbox's call for ``method``, looked up at each call."""
    name = HANDLERS[method]

    async def serve(request: Any, caller: Caller) -> bytes:
        return await getattr(inbox, name)(request, caller)
    return serve


class OneFrame:
    """A request of one frame as the stream a streamed handler reads it from (a goodbye)."""

    def __init__(self, frame: bytes) -> None:
        self._frame: bytes | None = frame

    async def next(self) -> bytes | None:
        frame, self._frame = self._frame, None
        return frame

    async def send(self, frame: bytes) -> None:
        raise RuntimeError("a call of one frame has no frames back but its answer")


class OutStream(Protocol):
    """The sending end of a push; each call raises ``LinkError`` when the stream failed."""

    async def write(self, frame: bytes) -> None: ...
    async def done_writing(self) -> None: ...
    async def read(self) -> bytes | None:
        """The receiver's next frame; None when it ended the stream without one."""

    def cancel(self) -> None: ...


class Connection(Protocol):
    """Calls to one peer's receiver. ``wait_for_ready``: a peer not reachable yet is waited for
    (within ``timeout``) instead of failing at once."""

    async def unary(self, method: str, request: bytes, timeout: float, wait_for_ready: bool = False) -> bytes: ...
    async def gated(self, method: str, request: bytes, timeout: float) -> bytes: ...
    async def stream(self, method: str, timeout: float) -> OutStream:
        """A stream whose server proved who it is (with TLS) within ``timeout``."""

    def ready(self) -> bool:
        """Whether the connection is up now (a late answer over a live connection is a busy peer)."""


class Outbound(Protocol):
    """This party's connections to its peers. ``streams``: whether it carries streams; a link
    without them carries every value in one message, and proves identity its own way."""

    streams: bool

    def connect(self, dst: str, purpose: str = VALUES) -> Connection: ...
    async def presented_names(self, dst: str) -> set[str] | None:
        """The names in the certificate ``dst``'s server presents; None if it cannot be read (not
        up, or no TLS). For an error that says which names it carries when they are not ``dst``."""

    async def close(self) -> None: ...


class Server(Protocol):
    fetches: bool  # whether values are fetched when wanted (a proxy) rather than pushed

    def wanted(self, src: str, object_id: str) -> None:
        """This party's program waits for that value: a link that fetches values (rather than
        being pushed them) fetches it now."""

    async def stop(self, grace: float) -> None: ...


# name -> module. A module provides ``outbound(config) -> Outbound`` and
# ``async serve(config, inbox) -> Server`` (``OSError`` when it cannot listen).
LINKS = {
    "grpc": "fed._transport.grpc_link",
    "memory": "fed._transport.memory_link",
    "proxy": "fed._transport.proxy_link",  # the user's RayFed proxy classes (``FedConfig.plugins``)
}


def _module(config: Any):
    name = getattr(config, "link", "grpc")
    if name not in LINKS:
        raise ValueError(f"unknown link {name!r}; known: {', '.join(sorted(LINKS))}")
    return importlib.import_module(LINKS[name])


def outbound(config: Any) -> Outbound:
    """This party's connections to its peers over the job's link (to an outbound-only peer: over
    the standby calls it keeps open to this party, ``reverse``)."""
    made = _module(config).outbound(config)
    if getattr(config, "outbound_only", None):
        from fed._transport import reverse

        made = reverse.Outbound(config, made)
    return made


async def serve(config: Any, inbox: Inbox) -> Server:
    """Serve ``inbox`` on the party's listening address over the job's link; an outbound-only
    party listens nowhere and serves over the standby calls it opens to each peer (``reverse``)."""
    if config.party in getattr(config, "outbound_only", ()):
        from fed._transport.standbys import Dialer

        return Dialer(config, inbox, _module(config).outbound(config))
    return await _module(config).serve(config, inbox)
