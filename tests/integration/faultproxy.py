"""A fault-injecting TCP proxy for tests: sits between two parties and misbehaves on request.

    with FaultProxy(target="127.0.0.1:5001") as proxy:   # listens on proxy.address
        proxy.cut_after(50_000_000)      # the first connection to carry 50 MB towards the target dies
        proxy.cut_every(2_000_000)       # every connection dies once it carried 2 MB
        proxy.delay(0.05)                # 50 ms before every forwarded piece
        proxy.bandwidth(10_000_000)      # at most 10 MB/s each way
        proxy.stall()                    # stop forwarding (connections stay open) until resume()
        proxy.refuse()                   # close new connections at once until accept()

It runs on an asyncio loop in a daemon thread of the test process; the parties only see an
address. Counters (``connections``, ``cuts``, ``bytes_up``) let a test check that a fault happened.
"""

from __future__ import annotations

import asyncio
import socket
import threading

PIECE = 256 * 1024


class FaultProxy:
    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._delay = 0.0
        self._rate: float | None = None
        self._cut_after: int | None = None
        self._cut_every: int | None = None
        self._refusing = False
        self._flowing = threading.Event()
        self._flowing.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.cuts = 0
        self.bytes_up = 0  # towards the target, over every connection
        sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{sock.getsockname()[1]}"
        self._sock = sock
        self._server: asyncio.base_events.Server | None = None

    # ---- controls (from the test's thread) ----

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def bandwidth(self, bytes_per_second: float | None) -> None:
        self._rate = bytes_per_second

    def cut_after(self, nbytes: int) -> None:
        """The first connection to have carried ``nbytes`` towards the target is closed,
        both ways; one cut, whichever connection it is (a party also opens connections that carry
        little, such as its liveness pings, in an order that is not fixed)."""
        self._cut_after = nbytes

    def cut_every(self, nbytes: int | None) -> None:
        """Every connection is closed once it has carried ``nbytes`` towards the target (None: stop)."""
        self._cut_every = nbytes

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def refuse(self) -> None:
        self._refusing = True

    def accept(self) -> None:
        self._refusing = False

    def cut_all(self) -> None:
        """Close every open connection now."""
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(5)

    # ---- lifecycle ----

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.resume()
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self._sock)

    async def _stop(self) -> None:
        self._server.close()
        await self._close_all()

    async def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    # ---- forwarding ----

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._refusing:
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, server_w}
        state = {"carried": 0}
        up = asyncio.ensure_future(self._pipe(client_r, server_w, state, upstream=True))
        down = asyncio.ensure_future(self._pipe(server_r, client_w, state, upstream=False))
        await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
        for writer in (client_w, server_w):
            writer.transport.abort()
            self._writers.discard(writer)
        up.cancel()
        down.cancel()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict,
                    upstream: bool) -> None:
        while True:
            data = await reader.read(PIECE)
            if not data:
                return
            while not self._flowing.is_set():
                await asyncio.sleep(0.05)
            if self._delay:
                await asyncio.sleep(self._delay)
            limit = self._cut_after if self._cut_after is not None else self._cut_every
            if upstream and limit is not None:
                if state["carried"] + len(data) >= limit:  # cut_after: the first to get there is cut
                    rest = max(0, limit - state["carried"])
                    if self._cut_after is not None:
                        self._cut_after = None
                    writer.write(data[:rest])
                    self.bytes_up += rest
                    self.cuts += 1
                    await writer.drain()
                    return  # the caller aborts both sides
            if upstream:
                state["carried"] += len(data)
            if self._rate:  # each piece waits for its share of the time before it goes
                await asyncio.sleep(len(data) / self._rate)
            writer.write(data)
            await writer.drain()
            if upstream:
                self.bytes_up += len(data)
