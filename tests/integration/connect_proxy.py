"""An HTTP proxy that takes CONNECT, for tests: the only way out of a party behind a firewall.

    with ConnectProxy({"alice.internal": "127.0.0.1"}) as proxy:   # proxy.url: http://127.0.0.1:PORT
        ...
        proxy.tunnels   # the 'host:port' of each CONNECT it served

It knows the names in its table (the parties' machines, as a proxy's own DNS would) and nothing
else: a name only the proxy resolves proves a client reached it through the proxy. Anything but
a CONNECT is answered 405. It runs on an asyncio loop in a daemon thread of the test process.
"""

from __future__ import annotations

import asyncio
import threading

_MAX_HEAD = 8192


class ConnectProxy:
    def __init__(self, names: dict[str, str]) -> None:
        self._names = names
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self.tunnels: list[str] = []
        self.url = ""

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result(10)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_HEAD:
                return
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or host not in self._names:
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n" if method != "CONNECT"
                             else b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection(self._names[host], int(port))
            self._writers.add(up_writer)
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError, OSError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
