"""Compression of pushes (``cross_silo_comm['compression']``): what zstd gains on float32 weights
and on text-like rows, in place and across a capped link.

    python benchmarks/compression.py [--size 128MB] [--levels 1,3] [--rtt 50] [--rate 100MB] [--sends 2]

1. In this process, on each payload: the ratio (payload bytes / compressed bytes) and MB/s of
   payload compressed and decompressed by fed's own functions (4 MiB frames, as a push sends
   them), next to a memory copy of the same bytes, measured in the same run.
2. Three parties, each its own process and Ray (``address='local'``); alice reaches bob and carol
   each through a delay line (``delay_line.py``) of ``--rtt`` ms at ``--rate`` a second. alice
   compresses what she pushes to bob (``compression: {'bob': 'zstd'}``), not what she pushes to
   carol. Each send, a task at alice makes the payload, and alice waits for a task at bob to
   consume it, then for one at carol: the time is from the value existing at alice to the
   answer. ``plain / zstd`` is carol's time over bob's: above 1, compression pays on that link.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from bandwidth import parse_size
from children import ROOT, free_ports
from delay_line import DelayLine

from fed._cli.sessions import kill_session
from fed._transport import compression

FRAME = 4 << 20
WORDS = ("alice,", "bob,", "carol,", "hospital,", "2026-12-03,", "42,", "3.14159,", "true,", "false,",
         "patient,", "visit,", "none,", "\n")


def payload(kind: str, size: int) -> np.ndarray:
    """``weights``: float32 from a normal distribution (a model's weights, whose mantissas are
    all but random); ``text``: CSV-like rows of a small vocabulary."""
    rng = np.random.default_rng(7)
    if kind == "weights":
        return rng.normal(0, 0.05, size // 4).astype(np.float32).view(np.uint8)
    words = np.array(WORDS, dtype=object)
    text = "".join(words[rng.integers(0, len(words), size // 5)]).encode()[:size]
    return np.frombuffer(text, dtype=np.uint8)


def in_process(size: int, levels: list[int]) -> None:
    print(f"in process, {size / 1e6:.0f} MB each, {FRAME >> 20} MiB frames")
    print(f"{'payload':>8} {'level':>5} {'ratio':>6} {'compress MB/s':>13} {'decompress MB/s':>15} "
          f"{'copy MB/s':>9}")
    for kind in ("weights", "text"):
        data = payload(kind, size)
        chunks = [bytes(data[i:i + FRAME]) for i in range(0, len(data), FRAME)]
        out = np.empty(len(data), dtype=np.uint8)
        out.fill(1)  # its pages exist before anything is timed, as a receiver's warm buffer's do
        t = time.perf_counter()
        for i, chunk in enumerate(chunks):
            out[i * FRAME:i * FRAME + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        copy_s = time.perf_counter() - t
        for level in levels:
            t = time.perf_counter()
            frames = [compression.compress(chunk, level) for chunk in chunks]
            pack_s = time.perf_counter() - t
            view, pos = memoryview(out), 0
            t = time.perf_counter()
            for frame in frames:
                pos += compression.decompress_into(frame, view[pos:])
            unpack_s = time.perf_counter() - t
            assert pos == len(data) and np.array_equal(out, data)
            print(f"{kind:>8} {level:>5} {len(data) / sum(map(len, frames)):>6.2f} {size / 1e6 / pack_s:>13.0f} "
                  f"{size / 1e6 / unpack_s:>15.0f} {size / 1e6 / copy_s:>9.0f}", flush=True)


def party_main(party: str, addresses: dict[str, str], size: int, sends: int, level: int) -> None:
    import ray

    import fed

    @fed.remote
    def make(kind: str, n: int):
        return payload(kind, n)

    @fed.remote
    def consume(x) -> int:
        return int(x.nbytes)

    ray.init(address="local", include_dashboard=False, object_store_memory=4 * size + 2**30)
    fed.init(addresses=addresses, party=party, config={"cross_silo_comm": {
        "compression": {"bob": "zstd"}, "compression_level": level, "timeout_in_ms": 120_000}})
    for kind in ("weights", "text"):
        for k in range(sends + 1):  # the first warms up workers and connections
            x = make.party("alice").remote(kind, size)
            if party == "alice":
                ray.wait([x._ref], fetch_local=False)
            t0 = time.time()
            assert fed.get(consume.party("bob").remote(x)) == size
            t1 = time.time()
            assert fed.get(consume.party("carol").remote(x)) == size
            t2 = time.time()
            if party == "alice" and k:
                print(f"RESULT {json.dumps({'kind': kind, 'zstd': t1 - t0, 'plain': t2 - t1})}", flush=True)
            del x
    fed.shutdown()
    ray.shutdown()


def across(size: int, rtt: float, rate: float | None, sends: int, level: int) -> None:
    listen = dict(zip(("alice", "bob", "carol"), free_ports(3)))
    local = {p: f"127.0.0.1:{port}" for p, port in listen.items()}
    procs: dict[str, subprocess.Popen] = {}
    with DelayLine(local["bob"], rtt / 1000, rate) as to_bob, \
            DelayLine(local["carol"], rtt / 1000, rate) as to_carol:
        views = {"alice": {**local, "bob": to_bob.address, "carol": to_carol.address}, "bob": local, "carol": local}
        cap = f"{rate / 1e6:.0f} MB/s" if rate else "no cap"
        print(f"\nacross a line of {rtt:g} ms RTT, {cap}: {size / 1e6:.0f} MB a send, zstd level {level}")
        print(f"{'payload':>8} {'zstd s':>7} {'zstd MB/s':>9} {'plain s':>7} {'plain MB/s':>10} {'plain / zstd':>12}")
        try:
            for party in ("alice", "bob", "carol"):
                argv = [sys.executable, __file__, "--party", party, "--addresses", json.dumps(views[party]),
                        "--size", str(size), "--sends", str(sends), "--levels", str(level)]
                procs[party] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                                cwd=ROOT, start_new_session=True)
            for line in procs["alice"].stdout:
                if line.startswith("RESULT "):
                    r = json.loads(line[7:])
                    print(f"{r['kind']:>8} {r['zstd']:>7.2f} {size / 1e6 / r['zstd']:>9.0f} {r['plain']:>7.2f} "
                          f"{size / 1e6 / r['plain']:>10.0f} {r['plain'] / r['zstd']:>12.2f}", flush=True)
            for proc in procs.values():
                if proc.wait(120):
                    raise SystemExit(f"a party failed (exit {proc.returncode})")
        finally:
            for proc in procs.values():
                kill_session(proc.pid)  # the party, its Ray daemons and workers
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="128MB")
    parser.add_argument("--levels", default="1,3", help="zstd levels (in process; the first across the line)")
    parser.add_argument("--rtt", type=float, default=50.0, help="round-trip delay of the lines, ms")
    parser.add_argument("--rate", default="100MB", help="cap a second each way; none: no cap")
    parser.add_argument("--sends", type=int, default=2, help="sends of each payload to each peer")
    parser.add_argument("--party")
    parser.add_argument("--addresses")
    opts = parser.parse_args()
    size, levels = parse_size(opts.size), [int(x) for x in opts.levels.split(",")]
    if opts.party:
        party_main(opts.party, json.loads(opts.addresses), size, opts.sends, levels[0])
        return
    in_process(size, levels)
    rate = None if opts.rate == "none" else parse_size(opts.rate)
    across(size, opts.rtt, rate, opts.sends, levels[0])


if __name__ == "__main__":
    main()
