"""The link over a user's RayFed proxies (``fed.init(sender_proxy_cls=..., receiver_proxy_cls=...)``).

RayFed's proxies move one-way messages: the sender proxy's ``send(dest, data, upstream_seq_id,
downstream_seq_id)`` delivers ``data`` to the peer's receiver proxy, which keeps it until that
party asks for it with ``get_data(src, upstream_seq_id, curr_seq_id)``. fed puts its own messages
on them, always ``bytes`` of its wire format (``fed.proxy.base_proxy``):

* a value goes under ``(object id, "fed-value")`` as one message (``PushWhole``'s format; values
  are not streamed over a proxy), and is fetched when this party's program waits for it (``wanted``);
* the barrier's hello goes under ``("fed-hello", "fed-hello")``, a goodbye under ``("fed-bye",
  "fed-bye")``, both ping and goodbye frames of ``wire``;
* liveness is a heartbeat from each receiver to each peer every ``liveness_timeout_in_ms / 5``,
  numbered (``("fed-alive-N", "fed-alive")``, each tried until delivered), which the peer's
  receiver fetches in order: a peer whose heartbeats stop is lost as one whose pings fail.

What a message carries is decoded and checked by the receiver as any push is; its source is the
one the proxy delivered it for (the proxy proves identity its own way). Over a proxy there are no
answers to a message, so fed cannot compare the parties' calls (divergence is found only when a
value's fingerprint differs) nor learn which values a peer will never send; a value is held by the
receiver proxy, outside ``max_buffered_bytes``, until this party's program asks for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import time
from typing import Any

from fed._config import FedConfig
from fed._security.untrusted import clip
from fed._transport import link, wire
from fed._transport.link import Caller, LinkError

logger = logging.getLogger("fed.proxy")

VALUE = "fed-value"
HELLO = "fed-hello"
BYE = "fed-bye"
ALIVE = "fed-alive"

# The receiver of each job in this process, for its liveness checks (``connect(..., LIVENESS)``).
_servers: dict[tuple[str, str], ProxyServer] = {}
# Threads for proxies whose methods are plain functions (RayFed's SenderReceiverProxy): a call of
# one holds a thread until it returns, a get_data until its value arrives.
_THREADS = 256
_pool: concurrent.futures.ThreadPoolExecutor | None = None


async def _invoke(method: Any, *args: Any) -> Any:
    """Call a proxy's method: a coroutine function on this loop, a plain function on a thread."""
    global _pool
    if inspect.iscoroutinefunction(method):
        return await method(*args)
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(_THREADS, thread_name_prefix="fed-proxy")
    result = await asyncio.get_running_loop().run_in_executor(_pool, method, *args)
    return await result if inspect.isawaitable(result) else result


def _interval(config: FedConfig) -> float:
    return config.comm.liveness_timeout_in_ms / 5000


def _sender_proxy(config: FedConfig) -> Any:
    """The object this process sends through: an instance of the user's sender proxy, or with one
    proxy for both ways (``receiver_sender_proxy_cls``) the receiver actor's, by a relay."""
    plugins = config.plugins
    if plugins.both is None:
        return plugins.sender(dict(config.addresses), config.party, config.job_name, plugins.tls_config,
                              plugins.proxy_config())
    if plugins.relay is not None:
        return _Relay(plugins.relay)
    server = _servers.get((config.job_name, config.party))
    if server is None:
        raise LinkError("UNAVAILABLE", "the receiver proxy is not running in this process")
    return server.proxy


class _Relay:
    """Sends through the proxy that lives in this party's receiver actor."""

    def __init__(self, receiver: Any) -> None:
        self._receiver = receiver

    async def send(self, dst: str, data: bytes, upstream: str, downstream: str) -> Any:
        return await self._receiver.relay.remote(dst, data, upstream, downstream)


async def _deliver(proxy: Any, dst: str, data: bytes, upstream: str, downstream: str, timeout: float) -> None:
    """One try of ``proxy.send``; a failure (an exception, or False) is a ``LinkError`` fed retries."""
    try:
        delivered = await asyncio.wait_for(_invoke(proxy.send, dst, data, upstream, downstream), timeout)
    except asyncio.TimeoutError:
        raise LinkError("DEADLINE_EXCEEDED", f"the sender proxy did not deliver within {timeout:g} s") from None
    except Exception as exc:  # noqa: BLE001 - the user's proxy failed: fed's retry policy decides
        raise LinkError("UNAVAILABLE", f"the sender proxy failed: {type(exc).__name__}: "
                                       f"{clip(str(exc), 300)}") from None
    if delivered is False:
        raise LinkError("UNAVAILABLE", "the sender proxy did not deliver")


class ProxyConnection:
    """Messages to one peer through the sender proxy."""

    def __init__(self, outbound: ProxyOutbound, dst: str) -> None:
        self._outbound, self._dst = outbound, dst

    async def unary(self, method: str, request: bytes, timeout: float, wait_for_ready: bool = False) -> bytes:
        cfg, proxy = self._outbound.config, self._outbound.proxy()
        if method == link.PUSH_WHOLE:
            head, _ = wire.decode_whole(request)
            await _deliver(proxy, self._dst, request, wire.decode_header(head).object_id, VALUE, timeout)
            return b"ok"
        if method == link.PING:  # the barrier: presence is the hello's delivery
            await _deliver(proxy, self._dst, request, HELLO, HELLO, timeout)
            return wire.encode_ping_answer(self._dst, cfg.job_name)
        raise LinkError("UNIMPLEMENTED", f"{method} has no answer over a proxy")

    async def gated(self, method: str, request: bytes, timeout: float) -> bytes:
        if method != link.BYE:
            raise LinkError("UNIMPLEMENTED", f"{method} has no answer over a proxy")
        await _deliver(self._outbound.proxy(), self._dst, request, BYE, BYE, timeout)
        return b"ok"

    async def stream(self, method: str, timeout: float) -> Any:
        raise LinkError("UNIMPLEMENTED", "values go over a proxy in one message")

    def ready(self) -> bool:
        return True


class _Heartbeats:
    """How a receiver's liveness sees a peer over a proxy: answered while its heartbeats come."""

    def __init__(self, config: FedConfig, dst: str) -> None:
        self._config, self._dst = config, dst

    def _fresh(self) -> bool:
        server = _servers.get((self._config.job_name, self._config.party))
        heard = server.heard.get(self._dst) if server is not None else None
        return heard is not None and time.monotonic() - heard < 2 * _interval(self._config)

    async def unary(self, method: str, request: bytes, timeout: float, wait_for_ready: bool = False) -> bytes:
        if method != link.PING:
            raise LinkError("UNIMPLEMENTED", f"{method} has no answer over a proxy")
        if not self._fresh():
            raise LinkError("UNAVAILABLE", f"no heartbeat from {self._dst} for {2 * _interval(self._config):g} s")
        return wire.encode_ping_answer(self._dst, self._config.job_name)

    async def gated(self, method: str, request: bytes, timeout: float) -> bytes:
        raise LinkError("UNIMPLEMENTED", "liveness says nothing over a proxy")

    async def stream(self, method: str, timeout: float) -> Any:
        raise LinkError("UNIMPLEMENTED", "liveness carries no values")

    def ready(self) -> bool:
        return self._fresh()


class ProxyOutbound:
    """This party's messages to its peers through one instance of the user's sender proxy."""

    streams = False  # every value goes in one message

    def __init__(self, config: FedConfig) -> None:
        self.config = config
        self._proxy: Any = None

    def proxy(self) -> Any:
        if self._proxy is None:
            self._proxy = _sender_proxy(self.config)
        return self._proxy

    def connect(self, dst: str, purpose: str = link.VALUES) -> ProxyConnection | _Heartbeats:
        return _Heartbeats(self.config, dst) if purpose == link.LIVENESS else ProxyConnection(self, dst)

    async def presented_names(self, dst: str) -> frozenset[str] | None:
        return None

    async def close(self) -> None:
        self._proxy = None


class ProxyServer:
    """The user's receiver proxy on this party's address, and what fed fetches from it."""

    fetches = True  # values are fetched when the program waits for them (``wanted``)

    def __init__(self, config: FedConfig, inbox: link.Inbox) -> None:
        plugins = config.plugins
        self._config, self._inbox = config, inbox
        if plugins.both is not None:
            self.proxy = plugins.both(dict(config.addresses), config.party, plugins.tls_config, plugins.proxy_config())
            self._beats = self.proxy  # this receiver's heartbeats to its peers
        else:
            self.proxy = plugins.receiver(config.listen_address, config.party, config.job_name, plugins.tls_config,
                                          plugins.proxy_config())
            self._beats = _sender_proxy(config)
        self._tasks: set[asyncio.Task] = set()
        self._stopped = False  # the loops' own flag: a cancellation can be lost (asyncio.wait_for before 3.12)
        self._wanted: set[tuple[str, str]] = set()
        self.heard: dict[str, float] = {}  # peer -> when its last heartbeat arrived

    def _caller(self, src: str) -> Caller:
        tls = self._config.tls
        return Caller(f"proxy:{src}", frozenset({tls.name_of(src)}) if tls is not None else frozenset())

    def _run(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        """Start the proxy (its ``start`` may serve until the job ends, as RayFed's gRPC one does)
        and wait until it says it is ready: ``is_ready`` may wait for that itself (RayFed's) or
        answer at once, and is asked again until it says yes or ``timeout_in_ms`` passes."""
        cfg = self._config
        starting = asyncio.get_running_loop().create_task(_invoke(self.proxy.start))
        self._tasks.add(starting)
        deadline = time.monotonic() + cfg.comm.timeout_in_ms / 1000
        state: Any = None
        while time.monotonic() < deadline:
            if starting.done() and starting.exception() is not None:
                raise OSError(f"party {cfg.party!r}: the receiver proxy could not start on {cfg.listen_address}: "
                              f"{type(starting.exception()).__name__}: {clip(str(starting.exception()), 300)}")
            state = await asyncio.wait_for(_invoke(self.proxy.is_ready), max(0.1, deadline - time.monotonic()))
            if not (state is False or (isinstance(state, tuple) and state and not state[0])):
                break
            await asyncio.sleep(0.05)
        else:
            raise OSError(f"party {cfg.party!r}: the receiver proxy on {cfg.listen_address} is not ready after "
                          f"{cfg.comm.timeout_in_ms} ms: {clip(str(state), 300)}")
        _servers[(self._config.job_name, self._config.party)] = self
        for peer in self._config.peers:
            self._run(self._fetch_control(peer, HELLO, link.PING))
            self._run(self._fetch_control(peer, BYE, link.BYE))
            self._run(self._fetch_heartbeats(peer))
            self._run(self._send_heartbeats(peer))

    def wanted(self, src: str, object_id: str) -> None:
        """This party's program waits for ``object_id`` from ``src``: fetch it (once)."""
        if (src, object_id) not in self._wanted:
            self._wanted.add((src, object_id))
            self._run(self._fetch_value(src, object_id))

    async def _fetch(self, src: str, upstream: str, downstream: str) -> bytes:
        data = await _invoke(self.proxy.get_data, src, upstream, downstream)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"the receiver proxy returned {type(data).__name__}, not the bytes that were sent")
        return bytes(data)

    async def _fetch_value(self, src: str, object_id: str) -> None:
        try:
            data = await self._fetch(src, object_id, VALUE)
        except Exception as exc:  # noqa: BLE001 - the wait must end, saying why
            await self._inbox.on_pulled(src, object_id, self._caller(src), None,
                                        f"{type(exc).__name__}: {clip(str(exc), 300)}")
            return
        await self._inbox.on_pulled(src, object_id, self._caller(src), data)

    async def _fetch_control(self, src: str, kind: str, method: str) -> None:
        """Every hello (or goodbye) ``src`` sends, handed to the receiver as a ping (or goodbye)."""
        while not self._stopped:
            try:
                frame = await self._fetch(src, kind, kind)
                request: Any = frame if method == link.PING else link.OneFrame(frame)
                await link.handler(self._inbox, method)(request, self._caller(src))
            except Exception as exc:  # noqa: BLE001 - refused (logged by the receiver) or the proxy failed
                logger.info("%s from %s not taken: %s", kind, src, clip(str(exc), 300))
                await asyncio.sleep(_interval(self._config))

    async def _fetch_heartbeats(self, src: str) -> None:
        n = 0
        while not self._stopped:
            try:
                frame = await self._fetch(src, f"{ALIVE}-{n}", ALIVE)
                await self._inbox.on_ping(frame, self._caller(src))  # checked as a ping is; src is alive
            except Exception as exc:  # noqa: BLE001 - refused (logged by the receiver) or the proxy failed
                logger.info("heartbeat %d from %s not taken: %s", n, src, clip(str(exc), 300))
            else:
                self.heard[src] = time.monotonic()
            n += 1

    async def _send_heartbeats(self, dst: str) -> None:
        cfg = self._config
        beat, n, every = wire.encode_ping(cfg.job_name, cfg.party), 0, _interval(cfg)
        while not self._stopped:
            try:
                await _deliver(self._beats, dst, beat, f"{ALIVE}-{n}", ALIVE, 2 * every)
                n += 1  # each is tried until delivered, so the peer fetches them in order
            except LinkError as exc:
                logger.debug("heartbeat %d to %s: %s", n, dst, exc)
            await asyncio.sleep(every)

    async def relay(self, dst: str, data: bytes, upstream: str, downstream: str) -> Any:
        """A send of the sender (another process) through this receiver's proxy (one for both ways)."""
        return await _invoke(self.proxy.send, dst, data, upstream, downstream)

    async def stop(self, grace: float) -> None:
        _servers.pop((self._config.job_name, self._config.party), None)
        self._stopped = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=max(grace, 1.0))
        stop = getattr(self.proxy, "stop", None)
        if callable(stop):
            await _invoke(stop)


def outbound(config: FedConfig) -> ProxyOutbound:
    return ProxyOutbound(config)


async def serve(config: FedConfig, inbox: link.Inbox) -> ProxyServer:
    server = ProxyServer(config, inbox)
    await server.start()
    return server
