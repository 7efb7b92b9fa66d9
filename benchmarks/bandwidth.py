"""Cross-party bandwidth: numpy arrays alice -> bob, against raw TCP loopback in the same run.

    python benchmarks/bandwidth.py [--sizes 100MB,1GB,2.3GiB] [--chunk BYTES]

For each size a task at alice makes the array, a task at bob consumes it; the time runs from the
moment the array exists at alice until alice has bob's (tiny) answer. Peak memory is sampled from
/proc for every process of each party (driver, Ray daemons, workers, proxies): ``anon`` is private
memory, ``rss`` also counts shared object-store pages a process touched.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from fed._cli.sessions import kill_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import free_ports  # noqa: E402  (ports no Ray daemon or kernel bind(0) can take)

UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
RAW_PIECE = 4 * 2**20


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``200MB``, ``1.5GiB``, or a bare number of bytes."""
    number, unit = re.fullmatch(r"([\d.]+)\s*([KMG]i?B|B)?", text.strip()).groups()
    return int(float(number) * UNITS[unit or "B"])


# ---------- raw TCP baseline ----------

def _raw_receiver(port_q: mp.Queue, total: int) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port_q.put(server.getsockname()[1])
    conn, _ = server.accept()
    buf = memoryview(bytearray(total))
    got = 0
    while got < total:
        got += conn.recv_into(buf[got:], min(RAW_PIECE, total - got))
    conn.sendall(b"k")


def _raw_sender(port: int, total: int, done_q: mp.Queue) -> None:
    data = memoryview(bytearray(total))
    with socket.create_connection(("127.0.0.1", port)) as conn:
        start = time.perf_counter()
        for pos in range(0, total, RAW_PIECE):
            conn.sendall(data[pos:pos + RAW_PIECE])
        conn.recv(1)
        done_q.put(time.perf_counter() - start)


def raw_tcp_seconds(total: int) -> float:
    """Seconds to move ``total`` bytes between two processes over a plain loopback socket."""
    ctx = mp.get_context("spawn")
    port_q, done_q = ctx.Queue(), ctx.Queue()
    recv = ctx.Process(target=_raw_receiver, args=(port_q, total))
    recv.start()
    send = ctx.Process(target=_raw_sender, args=(port_q.get(), total, done_q))
    send.start()
    seconds = done_q.get()
    send.join()
    recv.join()
    return seconds


# ---------- memory sampling ----------

def _session_memory(sid: int) -> tuple[int, int]:
    """(rss, anon) bytes summed over every process in session ``sid``."""
    rss = anon = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[3]) != sid:  # state ppid pgrp session
                    continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("RssAnon:"):
                        anon += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    return rss, anon


class Sampler(threading.Thread):
    """Samples each party's memory every 50 ms as (time, {party: (rss, anon)})."""

    def __init__(self, sessions: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.sessions, self.samples, self.stop = sessions, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.time(), {p: _session_memory(s) for p, s in self.sessions.items()}))
            self.stop.wait(0.05)

    def growth(self, party: str, t0: float, t1: float) -> tuple[int, int]:
        """Peak (rss, anon) during [t0, t1] minus the last sample before t0."""
        before = [m[party] for t, m in self.samples if t <= t0][-1:] or [(0, 0)]
        during = [m[party] for t, m in self.samples if t0 <= t <= t1] or before
        return (max(r for r, _ in during) - before[0][0], max(a for _, a in during) - before[0][1])


# ---------- the parties ----------

def array_tasks():
    """``make(n)`` at a party returns an array of ``n`` bytes; ``consume(x)`` checks it and returns
    its size (made inside a function, so Ray takes them by value, whichever script runs them)."""
    import numpy as np

    import fed

    @fed.remote
    def make(n: int):
        return np.full(n, 7, dtype=np.uint8)

    @fed.remote
    def consume(x) -> int:
        assert x[::4096].sum() == 7 * len(x[::4096])
        return int(x.nbytes)

    return make, consume


def party_main(party: str, addresses: dict[str, str], sizes: list[int], chunk: int, repeats: int) -> None:
    import ray

    import fed

    make, consume = array_tasks()
    ray.init(address="local", include_dashboard=False, object_store_memory=6 * 2**30)
    fed.init(addresses=addresses, party=party,
             config={"cross_silo_comm": {"chunk_size_in_bytes": chunk}})
    for i, n in enumerate([2**20] + [n for n in sizes for _ in range(repeats)]):
        # the first warms up workers and connections; not reported
        x = make.party("alice").remote(n)
        if party == "alice":
            ray.wait([x._ref], fetch_local=False)
            time.sleep(0.5)  # let the worker that made it free its copy before the baseline sample
        t0 = time.time()
        got = fed.get(consume.party("bob").remote(x))
        t1 = time.time()
        assert got == n, (got, n)
        if i:
            print(f"RESULT {json.dumps({'size': n, 't0': t0, 't1': t1})}", flush=True)
        del x
    fed.shutdown()
    ray.shutdown()


def run_fed(sizes: list[int], chunk: int, repeats: int) -> tuple[dict[int, list[tuple[float, float]]], Sampler]:
    addresses = {p: f"127.0.0.1:{port}" for p, port in zip(("alice", "bob"), free_ports(2))}
    procs = {}
    try:
        for party in addresses:
            argv = [sys.executable, __file__, "--party", party, "--addresses", json.dumps(addresses),
                    "--sizes", ",".join(map(str, sizes)), "--chunk", str(chunk), "--repeats", str(repeats)]
            procs[party] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                            text=True, start_new_session=True)
        sampler = Sampler({p: proc.pid for p, proc in procs.items()})
        sampler.start()
        times = {}
        for line in procs["alice"].stdout:
            if line.startswith("RESULT "):
                r = json.loads(line[7:])
                times.setdefault(r["size"], []).append((r["t0"], r["t1"]))
        for proc in procs.values():
            proc.wait(600)
        sampler.stop.set()
        if sum(map(len, times.values())) != len(sizes) * repeats:
            raise SystemExit(f"the parties failed (exit codes {[p.returncode for p in procs.values()]})")
        return times, sampler
    finally:
        for proc in procs.values():
            kill_session(proc.pid)  # the party, its Ray daemons and workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100MB,1GB,2.3GiB")
    parser.add_argument("--chunk", default="4MiB")
    parser.add_argument("--repeats", type=int, default=1,
                        help="send each size this many times in a row; later sends reuse warm memory")
    parser.add_argument("--party")
    parser.add_argument("--addresses")
    opts = parser.parse_args()
    sizes = [parse_size(s) for s in opts.sizes.split(",")]
    chunk = parse_size(opts.chunk)
    if opts.party:
        return party_main(opts.party, json.loads(opts.addresses), sizes, chunk, opts.repeats)

    times, sampler = run_fed(sizes, chunk, opts.repeats)
    print(f"chunk {chunk} bytes; memory growth is the peak during the transfer over the level before it")
    print(f"{'size':>10} {'send':>4} {'fed s':>7} {'fed MB/s':>9} {'raw MB/s':>9} {'ratio':>6} "
          f"{'alice anon':>11} {'alice rss':>10} {'bob anon':>9} {'bob rss':>8}")
    for n in sizes:
        raw_s = raw_tcp_seconds(n)
        for k, (t0, t1) in enumerate(times[n], 1):
            fed_s = t1 - t0
            a_rss, a_anon = sampler.growth("alice", t0, t1)
            b_rss, b_anon = sampler.growth("bob", t0, t1)
            print(f"{n / 1e6:>8.0f}MB {k:>4} {fed_s:>7.2f} {n / 1e6 / fed_s:>9.0f} {n / 1e6 / raw_s:>9.0f} "
                  f"{raw_s / fed_s:>6.2f} {a_anon / n:>10.2f}N {a_rss / n:>9.2f}N "
                  f"{b_anon / n:>8.2f}N {b_rss / n:>7.2f}N")


if __name__ == "__main__":
    main()
