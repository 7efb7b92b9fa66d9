"""A push across a long link: fed's 200 MB push against raw TCP through the same delay line.

    python benchmarks/wan.py [--size 200MB] [--rtts 0,50,200] [--rates none,100MB] [--repeats 3]
                             [--window BYTES] [--chunk BYTES] [--tcp-window BYTES] [--outbound-only]

Alice and bob are two processes, each with its own Ray (``address='local'``); each reaches the
other only through a delay line (``delay_line.py``: every piece delivered ``rtt / 2`` later, both
ways, pipelined; optionally at most ``rate`` bytes a second each way). A task at alice makes a
numpy array, a task at bob consumes it, and the time runs from the array existing at alice until
alice has bob's small answer. Right after each fed send, the same bytes go from one process to
another over a plain socket through a delay line with the same settings, and the sender waits for
one byte back (``raw``): each side pays one round trip on top of the bytes.

With ``--outbound-only`` bob listens nowhere: alice's pushes to him go on the standby calls he
opens to her through his line (``fed._transport.reverse``). Both parties stay up for the whole
run (their connections too, as in a long job); the lines' settings change between sends. With
``--tcp-window`` the lines also play TCP's end-to-end window (see ``delay_line.py``: by itself
the line lets a raw socket ignore the round trip). Memory is each party's peak private memory
(``anon``, every process of its session) during the send, over
the level just before it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import socket
import subprocess
import sys
import time

from bandwidth import Sampler, array_tasks, parse_size
from children import ROOT, free_ports
from delay_line import DelayLine

from fed._cli.sessions import kill_session

RAW_PIECE = 4 * 2**20


# ---------- raw TCP through a line ----------

def _raw_receiver(server: socket.socket, total: int) -> None:
    """Takes ``total`` bytes on each connection into one buffer (touched before, as fed's
    receiver's memory is warm after the first send) and answers one byte."""
    buf = memoryview(bytearray(total))
    buf[::4096] = b"\1" * len(range(0, total, 4096))
    while True:
        conn, _ = server.accept()
        with conn:
            got = 0
            while got < total:
                n = conn.recv_into(buf[got:], min(RAW_PIECE, total - got))
                if not n:
                    raise SystemExit("the sender went away")
                got += n
            conn.sendall(b"k")
            conn.recv(1)  # until the sender closes: the line delivers the answer before the close


class RawTcp:
    """A receiver process behind its own delay line; ``seconds()`` sends ``total`` bytes to it from
    this process and waits for its answer."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._data = memoryview(bytearray(total))
        self._data[::4096] = b"\1" * len(range(0, total, 4096))
        self._server = socket.create_server(("127.0.0.1", 0))
        self._receiver = mp.get_context("spawn").Process(target=_raw_receiver, args=(self._server, total),
                                                         daemon=True)
        self.line = DelayLine(f"127.0.0.1:{self._server.getsockname()[1]}")

    def __enter__(self) -> RawTcp:
        self._receiver.start()
        self.line.__enter__()
        self.seconds()  # warm: the line's and the receiver's memory
        return self

    def __exit__(self, *exc: object) -> None:
        self.line.__exit__()
        self._receiver.kill()
        self._receiver.join(10)
        self._server.close()

    def seconds(self) -> float:
        host, port = self.line.address.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as conn:
            start = time.perf_counter()
            for pos in range(0, self._total, RAW_PIECE):
                conn.sendall(self._data[pos:pos + RAW_PIECE])
            if conn.recv(1) != b"k":
                raise SystemExit("the raw receiver failed")
            return time.perf_counter() - start


# ---------- the parties ----------

def party_main(party: str, addresses: dict[str, str], size: int, sends: int, comm: dict, outbound: bool) -> None:
    import ray

    import fed

    make, consume = array_tasks()
    ray.init(address="local", include_dashboard=False, object_store_memory=3 * size + 2**30)
    cluster = {p: {"address": a} for p, a in addresses.items()}
    if outbound:  # bob listens nowhere: alice's pushes go on the standbys he opens through his line
        cluster["bob"] = {"outbound_only": True}
    fed.init(cluster=cluster, party=party, config={"cross_silo_comm": comm})
    for _ in range(sends + 1):  # the first (no delay) warms up workers, connections and memory
        x = make.party("alice").remote(size)
        if party == "alice":
            ray.wait([x._ref], fetch_local=False)
            time.sleep(0.5)  # let the worker that made it free its copy before the baseline sample
            print("READY", flush=True)
            sys.stdin.readline()  # the lines are set for this send
        t0 = time.time()
        got = fed.get(consume.party("bob").remote(x))
        t1 = time.time()
        assert got == size, (got, size)
        if party == "alice":
            print(f"RESULT {json.dumps({'t0': t0, 't1': t1})}", flush=True)
        del x
    fed.shutdown()
    ray.shutdown()


def _party(party: str, addresses: dict[str, str], opts: argparse.Namespace, sends: int) -> subprocess.Popen:
    argv = [sys.executable, __file__, "--party", party, "--addresses", json.dumps(addresses),
            "--size", str(opts.size), "--sends", str(sends), "--comm", json.dumps(opts.comm)]
    if opts.outbound_only:
        argv.append("--outbound-only")
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=ROOT, start_new_session=True)


def run(opts: argparse.Namespace, settings: list[tuple[float, float | None]]) -> None:
    listen = dict(zip(("alice", "bob"), free_ports(2)))
    procs: dict[str, subprocess.Popen] = {}
    with DelayLine(f"127.0.0.1:{listen['alice']}") as to_alice, DelayLine(f"127.0.0.1:{listen['bob']}") as to_bob, \
            RawTcp(opts.size) as raw:
        lines = (to_alice, to_bob, raw.line)
        # each party listens on its own port and reaches the other through a line
        views = {"alice": {"alice": f"127.0.0.1:{listen['alice']}", "bob": to_bob.address},
                 "bob": {"alice": to_alice.address, "bob": f"127.0.0.1:{listen['bob']}"}}
        try:
            for party in ("alice", "bob"):
                procs[party] = _party(party, views[party], opts, len(settings))
            sampler = Sampler({p: proc.pid for p, proc in procs.items()})
            sampler.start()
            alice = procs["alice"]
            print(f"{opts.size / 1e6:.0f} MB a send; chunk {opts.comm.get('chunk_size_in_bytes', 'default')}, "
                  f"window {opts.comm.get('inflight_window_in_bytes', 'default')}, "
                  f"gRPC options {opts.comm.get('grpc_channel_options', 'default')}, "
                  f"TCP window {opts.tcp_window or 'none'}{', bob outbound-only' if opts.outbound_only else ''}")
            print(f"{'rtt ms':>6} {'cap MB/s':>8} {'fed s':>7} {'fed MB/s':>8} {'raw MB/s':>8} {'ratio':>6} "
                  f"{'alice anon MB':>13} {'bob anon MB':>11}")
            for k, (rtt, rate) in enumerate([(0.0, None), *settings]):
                _expect(alice, "READY")
                for line in lines:
                    line.set(rtt, rate, opts.tcp_window)
                alice.stdin.write("go\n")
                alice.stdin.flush()
                result = json.loads(_expect(alice, "RESULT ")[7:])
                if not k:
                    continue
                t0, t1 = result["t0"], result["t1"]
                fed_s = t1 - t0
                raw_s = raw.seconds()
                a_anon = sampler.growth("alice", t0, t1)[1]
                b_anon = sampler.growth("bob", t0, t1)[1]
                cap = f"{rate / 1e6:.0f}" if rate else "none"
                print(f"{rtt * 1000:>6.0f} {cap:>8} {fed_s:>7.2f} {opts.size / 1e6 / fed_s:>8.0f} "
                      f"{opts.size / 1e6 / raw_s:>8.0f} {raw_s / fed_s:>6.2f} {a_anon / 1e6:>13.0f} "
                      f"{b_anon / 1e6:>11.0f}", flush=True)
            for proc in procs.values():
                proc.wait(120)
            sampler.stop.set()
        finally:
            for proc in procs.values():
                kill_session(proc.pid)  # the party, its Ray daemons and workers
                proc.wait()


def _expect(proc: subprocess.Popen, prefix: str) -> str:
    for line in proc.stdout:
        if line.startswith(prefix):
            return line
    raise SystemExit(f"alice ended (exit {proc.wait()}) before printing {prefix.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="200MB")
    parser.add_argument("--rtts", default="0,50,200", help="round-trip delays in ms")
    parser.add_argument("--rates", default="none,100MB", help="caps a second each way; none: no cap")
    parser.add_argument("--repeats", type=int, default=3, help="sends at each setting")
    parser.add_argument("--window", help="cross_silo_comm inflight_window_in_bytes")
    parser.add_argument("--chunk", help="cross_silo_comm chunk_size_in_bytes")
    parser.add_argument("--grpc-options", help="cross_silo_comm grpc_channel_options as JSON, e.g. "
                        "'[[\"grpc.http2.bdp_probe\", 0]]'")
    parser.add_argument("--tcp-window", help="bytes the lines let be unacknowledged each way, as TCP's window")
    parser.add_argument("--party")
    parser.add_argument("--addresses")
    parser.add_argument("--sends", type=int)
    parser.add_argument("--outbound-only", action="store_true", help="bob listens nowhere (cluster outbound_only)")
    parser.add_argument("--comm")
    opts = parser.parse_args()
    opts.size = parse_size(opts.size)
    if opts.tcp_window:
        opts.tcp_window = parse_size(opts.tcp_window)
    if opts.party:
        return party_main(opts.party, json.loads(opts.addresses), opts.size, opts.sends, json.loads(opts.comm),
                          opts.outbound_only)
    opts.comm = {key: parse_size(v)
                 for key, v in (("inflight_window_in_bytes", opts.window), ("chunk_size_in_bytes", opts.chunk)) if v}
    if opts.grpc_options:
        opts.comm["grpc_channel_options"] = json.loads(opts.grpc_options)
    rates = [None if r == "none" else parse_size(r) for r in opts.rates.split(",")]
    settings = [(int(rtt) / 1000, rate) for rtt in opts.rtts.split(",") for rate in rates
                for _ in range(opts.repeats)]
    run(opts, settings)


if __name__ == "__main__":
    main()
