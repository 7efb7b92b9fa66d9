"""A user-space delay line for benchmarks: a TCP proxy that delivers every piece it carries a fixed
time after it arrived, both ways, pipelined, with an optional rate cap.

    with DelayLine("127.0.0.1:5001") as line:     # listens on line.address, forwards to the target
        line.set(rtt=0.2, rate=100e6)              # 100 ms each way, at most 100 MB/s each way
        line.set(rtt=0.2, window=32 << 20)         # and as TCP with a 32 MiB window end to end

Each direction is a queue of timestamped pieces: a reader puts what arrives on the queue with the
time it is due (``arrival + rtt / 2``; with a cap, when the piece has finished crossing a link of
that rate, plus ``rtt / 2``), and a writer sends each piece when it is due. Many pieces are in
flight at once, as on a long link; a sleep per piece would instead cap the rate at one piece a
delay. The line holds what is in flight on its link (with a cap: ``rate * rtt / 2``; without:
at most ``UNCAPPED_HOLD``) plus a bottleneck's queue of ``QUEUE`` bytes, and stops reading beyond
that, so a sender faster than the cap is held back by TCP, as by a real bottleneck.

The line ends the TCP connections on both sides (a split proxy), so by itself it does not make a
raw socket's sender wait a round trip for acknowledgements as a TCP connection across a real long
link does: through it, raw TCP moves as fast at 200 ms as at 0 ms, while a protocol with its own
acknowledgements (HTTP/2's windows, fed's window) pays each round trip. With ``window`` set, the
line also plays TCP's end-to-end window: a piece counts from when it is read until its
acknowledgement would be back (delivered plus ``rtt / 2``), and the line reads no more while
``window`` bytes count; every connection through it, raw or not, then moves at most ``window``
bytes a round trip, as across a real link whose hosts' TCP buffers allow that much.

The line runs in a process of its own (its own GIL: forwarding a GB/s costs a core), started and
stopped by the ``DelayLine`` object; ``set`` applies to pieces that arrive after it.
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing as mp
from multiprocessing.connection import Connection

PIECE = 1024 * 1024
UNCAPPED_HOLD = 512 * 1024 * 1024
QUEUE = 4 * 1024 * 1024


class DelayLine:
    def __init__(self, target: str, rtt: float = 0.0, rate: float | None = None) -> None:
        host, port = target.rsplit(":", 1)
        ctx = mp.get_context("spawn")
        self._control, child_end = ctx.Pipe()
        self._process = ctx.Process(target=_main, args=(host, int(port), rtt, rate, child_end), daemon=True)
        self.address = ""

    def set(self, rtt: float, rate: float | None = None, window: int | None = None) -> None:
        """Round-trip delay ``rtt`` seconds, at most ``rate`` bytes a second each way (None: no cap)
        and at most ``window`` bytes unacknowledged each way (None: as many as the line holds)."""
        self._control.send((rtt, rate, window))
        self._control.recv()

    def __enter__(self) -> DelayLine:
        self._process.start()
        self.address = f"127.0.0.1:{self._control.recv()}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.kill()
        self._process.join(10)


class _Link:
    """One direction's settings and the time its (capped) link is busy until."""

    def __init__(self, shared: dict) -> None:
        self._shared = shared
        self._busy_until = 0.0

    def due(self, now: float, n: int) -> float:
        rate = self._shared["rate"]
        if rate:
            self._busy_until = max(self._busy_until, now) + n / rate
            now = self._busy_until
        return now + self._shared["rtt"] / 2

    def holds(self) -> int:
        """Bytes this direction may hold before it stops reading."""
        rate = self._shared["rate"]
        return (int(rate * self._shared["rtt"] / 2) if rate else UNCAPPED_HOLD) + QUEUE

    def window(self) -> int | None:
        return self._shared["window"]

    def back(self) -> float:
        """Seconds from a piece's delivery until its acknowledgement would be back."""
        return self._shared["rtt"] / 2


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
    loop = asyncio.get_running_loop()
    queue: collections.deque[tuple[float, bytes]] = collections.deque()
    state = {"held": 0, "unacked": 0}
    arrived, room = asyncio.Event(), asyncio.Event()

    async def deliver() -> None:
        while True:
            while not queue:
                arrived.clear()
                await arrived.wait()
            due, data = queue.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.write_eof()
                return
            writer.write(data)
            state["held"] -= len(data)
            room.set()
            loop.call_later(link.back(), acknowledged, len(data))
            await writer.drain()

    def acknowledged(n: int) -> None:
        state["unacked"] -= n
        room.set()

    def full() -> bool:
        window = link.window()
        return state["held"] > link.holds() or (window is not None and state["unacked"] >= window)

    delivering = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(PIECE)
            queue.append((link.due(loop.time(), len(data)), data))
            arrived.set()
            if not data:
                break
            state["held"] += len(data)
            state["unacked"] += len(data)
            while full():
                room.clear()
                await room.wait()
        await delivering
    except (OSError, asyncio.CancelledError):
        delivering.cancel()
        raise


async def _serve(target: tuple[str, int], shared: dict, client_r: asyncio.StreamReader,
                 client_w: asyncio.StreamWriter) -> None:
    try:
        server_r, server_w = await asyncio.open_connection(*target, limit=4 * PIECE)
    except OSError:
        client_w.transport.abort()
        return
    pumps = [asyncio.ensure_future(_pump(client_r, server_w, _Link(shared))),
             asyncio.ensure_future(_pump(server_r, client_w, _Link(shared)))]
    # A connection lives until both directions ended (each sends its end on when it is due), or
    # either broke.
    await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
    for pump in pumps:
        pump.cancel()
    await asyncio.gather(*pumps, return_exceptions=True)
    for writer in (client_w, server_w):
        writer.transport.abort()


def _main(host: str, port: int, rtt: float, rate: float | None, control: Connection) -> None:
    shared = {"rtt": rtt, "rate": rate, "window": None}

    async def run() -> None:
        server = await asyncio.start_server(lambda r, w: _serve((host, port), shared, r, w), "127.0.0.1", 0,
                                            limit=4 * PIECE)
        control.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        while True:
            shared["rtt"], shared["rate"], shared["window"] = await loop.run_in_executor(None, control.recv)
            control.send(True)

    asyncio.run(run())
