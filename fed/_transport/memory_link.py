"""An in-memory link: parties in one event loop call each other's receivers directly.

For tests of the whole policy (retries, room, duplicates, window, liveness, divergence, identity)
without sockets or Ray: a receiver and a sender made with ``FedConfig.link = "memory"`` find each
other by address on the running loop's ``Network``, and a test sets faults per address on it
(``Network.fault``). It keeps the link's contract (``fed._transport.link``): refusals reach the
sender as ``LinkError`` with their kind's code, a cancelled call cancels its handler, a timed-out
call is DEADLINE_EXCEEDED. There is no encryption: a caller's names are the ones ``Network.claims``
gives its party (by default the name its TLS config binds it to), and a fault can make a server
fail its proof.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

from fed._config import FedConfig
from fed._transport import link
from fed._transport.link import Caller, LinkError, ProofError, Refused


@dataclass
class Fault:
    """What goes wrong on the way to one address (a test sets and clears these)."""

    refuse: bool = False          # connections are refused (the process died): UNAVAILABLE at once
    silent: bool = False          # nothing answers (the machine is gone): calls time out
    late: float = 0.0             # answers come this many seconds late (a busy peer, connection up)
    cut_after: int | None = None  # the next ``cuts`` streams that carry this many bytes break (INTERNAL)
    cuts: int = 1
    read_delay: float = 0.0       # the receiver reads each frame of a stream this many seconds late
    unread: bool = False          # the sender reads nothing the receiver sends: its sends wait
    impostor: bool = False        # the server there cannot prove it is the party


class Network:
    """The receivers of one event loop by address, the faults on the way to them, and what a test reads."""

    def __init__(self) -> None:
        self.servers: dict[str, link.Inbox] = {}
        self.faults: dict[str, Fault] = {}
        self.claims: dict[str, frozenset[str]] = {}  # party -> the names its calls carry
        self.calls: dict[tuple[str, str], int] = {}  # (address, method) -> calls that reached the server
        self.peak_unread: dict[str, int] = {}        # address -> most bytes written to a stream, not yet read
        self.carried: dict[str, int] = {}            # address -> bytes written to its streams, all told

    def fault(self, address: str) -> Fault:
        return self.faults.setdefault(address, Fault())

    def _cut(self, address: str, carried: int) -> bool:
        fault = self.faults.get(address)
        if fault is None or fault.cut_after is None or carried < fault.cut_after:
            return False
        fault.cuts -= 1
        if fault.cuts <= 0:  # the streams after them go through
            fault.cut_after = None
        return True


_networks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Network] = weakref.WeakKeyDictionary()


def network() -> Network:
    """The network of the running event loop (each ``asyncio.run`` has its own)."""
    loop = asyncio.get_running_loop()
    if loop not in _networks:
        _networks[loop] = Network()
    return _networks[loop]


_GONE = object()  # in a stream's queue to the receiver: the sender's end is gone


class _Stream:
    """The sender's end of a stream; the receiver's handler runs as a task."""

    def __init__(self, net: Network, address: str, inbox: link.Inbox, method: str, caller: Caller) -> None:
        self._net, self._address = net, address
        self._to_server: asyncio.Queue = asyncio.Queue()
        self._to_client: asyncio.Queue = asyncio.Queue()
        self._carried = self._unread = 0
        self._broken: LinkError | None = None
        self._task = asyncio.get_running_loop().create_task(self._serve(inbox, method, caller))

    async def _serve(self, inbox: link.Inbox, method: str, caller: Caller) -> None:
        try:
            answer = await link.handler(inbox, method)(_Served(self), caller)
        except Refused as refused:
            self._to_client.put_nowait(LinkError(refused.kind.value, refused.public, refused.no_room))
        except asyncio.CancelledError:  # as gRPC ends a call whose handler was cancelled
            self._to_client.put_nowait(LinkError("CANCELLED", "the call was cancelled at the receiver"))
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in the handler: the sender learns nothing of it
            refused = link.internal_error(exc, caller)
            self._to_client.put_nowait(LinkError(refused.kind.value, refused.public))
        else:
            self._to_client.put_nowait(answer)

    def _break(self, why: str) -> LinkError:
        if self._broken is None:
            self._broken = LinkError("INTERNAL", why)
            self._gone()
            self._to_client.put_nowait(self._broken)
        return self._broken

    def _gone(self) -> None:
        # Both: a cancellation that lands as the handler's wait for a frame completes is lost
        # (asyncio.wait_for before Python 3.12); the marker then ends its next wait.
        self._task.cancel()
        self._to_server.put_nowait(_GONE)

    async def write(self, frame: bytes) -> None:
        if self._broken is not None:
            raise self._broken
        self._carried += len(frame)
        self._net.carried[self._address] = self._net.carried.get(self._address, 0) + len(frame)
        if self._net._cut(self._address, self._carried):
            raise self._break("connection cut")
        self._unread += len(frame)
        peak = self._net.peak_unread
        peak[self._address] = max(peak.get(self._address, 0), self._unread)
        self._to_server.put_nowait(bytes(frame))

    async def done_writing(self) -> None:
        if self._broken is not None:
            raise self._broken
        self._to_server.put_nowait(None)

    async def read(self) -> bytes | None:
        item = await self._to_client.get()
        if isinstance(item, LinkError):
            self._to_client.put_nowait(item)  # every later read fails the same way
            raise item
        return item

    def cancel(self) -> None:
        if not self._task.done():
            self._gone()


class _Served:
    """The receiver's end of a stream: frames the sender wrote (counted for ``Network.peak_unread``),
    and frames back to it."""

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    async def next(self) -> bytes | None:
        delay = self._stream._net.faults.get(self._stream._address, Fault()).read_delay
        if delay:
            await asyncio.sleep(delay)
        frame = await self._stream._to_server.get()
        if frame is _GONE:  # as gRPC cancels the handler of a call whose client went away
            raise asyncio.CancelledError()
        if frame is not None:
            self._stream._unread -= len(frame)
        return frame

    async def send(self, frame: bytes) -> None:
        if self._stream._net.faults.get(self._stream._address, Fault()).unread:
            await asyncio.Event().wait()  # as a gRPC write to a full HTTP/2 window
        self._stream._to_client.put_nowait(frame)


class MemoryConnection:
    def __init__(self, net: Network, config: FedConfig, dst: str) -> None:
        self._net, self._dst, self._address = net, dst, config.addresses[dst]
        party = config.party
        default = frozenset({config.tls.name_of(party)}) if config.tls is not None else frozenset()
        self._caller = lambda: Caller(f"memory:{party}", net.claims.get(party, default))

    async def _reach(self, method: str, wait_for_ready: bool) -> link.Inbox:
        """The server at the address once it can be reached; UNAVAILABLE at once unless ``wait_for_ready``."""
        while True:
            fault = self._net.faults.get(self._address, Fault())
            inbox = self._net.servers.get(self._address)
            if fault.silent:
                await asyncio.sleep(3600)  # the caller's timeout ends the call
            elif inbox is not None and not fault.refuse:
                if fault.impostor:
                    raise ProofError(f"the server at {self._address} did not prove it is {self._dst!r} (fault)")
                if fault.late:
                    await asyncio.sleep(fault.late)
                key = (self._address, method)
                self._net.calls[key] = self._net.calls.get(key, 0) + 1
                return inbox
            elif not wait_for_ready:
                raise LinkError("UNAVAILABLE", f"failed to connect to {self._address}")
            else:
                await asyncio.sleep(0.02)

    async def _timed(self, call: Any, timeout: float) -> bytes:
        try:
            return await asyncio.wait_for(call, timeout)
        except asyncio.TimeoutError:
            raise LinkError("DEADLINE_EXCEEDED", "Deadline Exceeded") from None
        except Refused as refused:
            raise LinkError(refused.kind.value, refused.public, refused.no_room) from None
        except (LinkError, ProofError):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in the handler: the sender learns nothing of it
            refused = link.internal_error(exc, self._caller())
            raise LinkError(refused.kind.value, refused.public) from None

    async def unary(self, method: str, request: bytes, timeout: float, wait_for_ready: bool = False) -> bytes:
        async def call() -> bytes:
            inbox = await self._reach(method, wait_for_ready)
            return await link.handler(inbox, method)(bytes(request), self._caller())
        return await self._timed(call(), timeout)

    async def gated(self, method: str, request: bytes, timeout: float) -> bytes:
        async def call() -> bytes:
            inbox = await self._reach(method, False)
            return await link.handler(inbox, method)(link.OneFrame(bytes(request)), self._caller())
        return await self._timed(call(), timeout)

    async def stream(self, method: str, timeout: float) -> _Stream:
        inbox = await asyncio.wait_for(self._reach(method, True), timeout)
        return _Stream(self._net, self._address, inbox, method, self._caller())

    def ready(self) -> bool:
        fault = self._net.faults.get(self._address, Fault())
        return self._address in self._net.servers and not (fault.refuse or fault.silent)


class MemoryOutbound:
    streams = True

    def __init__(self, config: FedConfig) -> None:
        self._config = config
        self._net = network()

    def connect(self, dst: str, purpose: str = link.VALUES) -> MemoryConnection:
        return MemoryConnection(self._net, self._config, dst)

    async def presented_names(self, dst: str) -> frozenset[str] | None:
        return None

    async def close(self) -> None:
        pass


class MemoryServer:
    fetches = False  # values are pushed

    def __init__(self, net: Network, address: str) -> None:
        self._net, self._address = net, address

    def wanted(self, src: str, object_id: str) -> None:
        pass

    async def stop(self, grace: float) -> None:
        self._net.servers.pop(self._address, None)


def outbound(config: FedConfig) -> MemoryOutbound:
    return MemoryOutbound(config)


async def serve(config: FedConfig, inbox: link.Inbox) -> MemoryServer:
    net = network()
    if config.listen_address in net.servers:
        raise OSError(f"party {config.party!r} cannot listen on {config.listen_address}: the address is taken")
    net.servers[config.listen_address] = inbox
    return MemoryServer(net, config.listen_address)
