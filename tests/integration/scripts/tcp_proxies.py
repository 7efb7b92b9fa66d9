"""A user's own link, written as a RayFed 0.2 user writes one: proxy classes over plain TCP sockets.

``TcpSender`` / ``TcpReceiver`` (coroutine methods, as RayFed's gRPC proxies) and ``TcpBoth`` (one
object for both ways, plain blocking methods, as RayFed's ``SenderReceiverProxy``). A message is
one connection: a 4-byte length, a JSON head ``{src, up, down}``, an 8-byte length, the data;
the receiving end answers ``K`` once it stored it. Every message taken is also recorded, one line
per message, in ``$FED_TEST_PROXY_LOG`` when it is set (the test reads what crossed).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import socketserver
import threading

from fed.proxy.base_proxy import ReceiverProxy, SenderProxy, SenderReceiverProxy


def _frame(src: str, up, down, data: bytes) -> bytes:
    head = json.dumps({"src": src, "up": str(up), "down": str(down)}).encode()
    return len(head).to_bytes(4, "little") + head + len(data).to_bytes(8, "little") + bytes(data)


def _record(party: str, head: dict, size: int) -> None:
    path = os.environ.get("FED_TEST_PROXY_LOG")
    if path:
        with open(f"{path}.{party}", "a") as log:
            log.write(json.dumps({**head, "bytes": size}) + "\n")


def _split(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


class TcpSender(SenderProxy):
    async def send(self, dest_party, data, upstream_seq_id, downstream_seq_id):
        reader, writer = await asyncio.open_connection(*_split(self._addresses[dest_party]))
        try:
            writer.write(_frame(self._party, upstream_seq_id, downstream_seq_id, data))
            await writer.drain()
            return await reader.readexactly(1) == b"K"
        finally:
            writer.close()


class TcpReceiver(ReceiverProxy):
    def __init__(self, listen_addr, party, job_name, tls_config, proxy_config=None):
        super().__init__(listen_addr, party, job_name, tls_config, proxy_config)
        self._store: dict[tuple[str, str, str], bytes] = {}
        self._arrived: dict[tuple[str, str, str], asyncio.Event] = {}
        self._server = None

    async def start(self):
        self._server = await asyncio.start_server(self._serve, *_split(self._listen_addr))

    async def is_ready(self):
        return self._server is not None

    async def _serve(self, reader, writer):
        try:
            head = json.loads(await reader.readexactly(int.from_bytes(await reader.readexactly(4), "little")))
            data = await reader.readexactly(int.from_bytes(await reader.readexactly(8), "little"))
        except (asyncio.IncompleteReadError, ValueError):
            writer.close()
            return
        key = (head["src"], head["up"], head["down"])
        self._store[key] = data
        self._arrived.setdefault(key, asyncio.Event()).set()
        _record(self._party, head, len(data))
        writer.write(b"K")
        await writer.drain()
        writer.close()

    async def get_data(self, src_party, upstream_seq_id, curr_seq_id):
        key = (src_party, str(upstream_seq_id), str(curr_seq_id))
        await self._arrived.setdefault(key, asyncio.Event()).wait()
        self._arrived.pop(key, None)
        return self._store.pop(key)

    def stop(self):
        if self._server is not None:
            self._server.close()


class TcpBoth(SenderReceiverProxy):
    """One object both ways, with blocking methods (fed runs them on threads)."""

    def __init__(self, addresses, self_party, tls_config, proxy_config=None):
        super().__init__(addresses, self_party, tls_config, proxy_config)
        self._store: dict[tuple[str, str, str], bytes] = {}
        self._changed = threading.Condition()
        self._server = None

    def start(self):
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                head = json.loads(self.rfile.read(int.from_bytes(self.rfile.read(4), "little")))
                data = self.rfile.read(int.from_bytes(self.rfile.read(8), "little"))
                with proxy._changed:
                    proxy._store[(head["src"], head["up"], head["down"])] = data
                    proxy._changed.notify_all()
                _record(proxy._party, head, len(data))
                self.wfile.write(b"K")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(_split(self._addresses[self._party]), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def get_data(self, src_party, upstream_seq_id, curr_seq_id):
        key = (src_party, str(upstream_seq_id), str(curr_seq_id))
        with self._changed:
            self._changed.wait_for(lambda: key in self._store)
            return self._store.pop(key)

    def send(self, dest_party, data, upstream_seq_id, downstream_seq_id):
        with socket.create_connection(_split(self._addresses[dest_party]), timeout=30) as sock:
            sock.sendall(_frame(self._party, upstream_seq_id, downstream_seq_id, data))
            return sock.recv(1) == b"K"

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
