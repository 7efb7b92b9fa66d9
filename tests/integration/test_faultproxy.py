"""The fault proxy itself, against a plain echo server: each fault does what it says."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from faultproxy import FaultProxy


@pytest.fixture
def echo():
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    server.close()


def connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def round_trip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        piece = sock.recv(65536)
        if not piece:
            break
        got += piece
    return got


def test_forwards_both_ways_and_delays(echo):
    with FaultProxy(echo) as proxy:
        with connect(proxy.address) as sock:
            assert round_trip(sock, b"hello") == b"hello"
            proxy.delay(0.2)
            started = time.monotonic()
            assert round_trip(sock, b"again") == b"again"
            assert time.monotonic() - started >= 0.4  # once each way
        assert proxy.connections == 1 and proxy.bytes_up == 10


def test_caps_bandwidth(echo):
    with FaultProxy(echo) as proxy:
        proxy.bandwidth(1_000_000)
        with connect(proxy.address) as sock:
            started = time.monotonic()
            assert len(round_trip(sock, b"x" * 1_000_000)) == 1_000_000
            assert time.monotonic() - started >= 0.9


def test_cuts_one_connection_after_n_bytes(echo):
    with FaultProxy(echo) as proxy:
        proxy.cut_after(1000)
        with connect(proxy.address) as sock:
            got = round_trip(sock, b"y" * 5000)
            assert len(got) <= 1000
        with connect(proxy.address) as sock:  # the next connection is whole again
            assert round_trip(sock, b"z" * 5000) == b"z" * 5000
        assert proxy.cuts == 1


def test_stalls_until_resumed(echo):
    with FaultProxy(echo) as proxy:
        with connect(proxy.address) as sock:
            proxy.stall()
            sock.sendall(b"wait")
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(10)
            proxy.resume()
            sock.settimeout(5)
            assert sock.recv(10) == b"wait"


def test_refuses_new_connections_until_accepting_again(echo):
    with FaultProxy(echo) as proxy:
        proxy.refuse()
        with connect(proxy.address) as sock:
            assert sock.recv(10) == b""  # closed at once
        proxy.accept()
        with connect(proxy.address) as sock:
            assert round_trip(sock, b"in") == b"in"
