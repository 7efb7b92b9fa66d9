"""Every party sends to every other party each round (multi-controller, one process per party).

    all_to_all.py PARTY ADDRESSES_JSON ROUNDS MARKS_DIR

Each round every party makes a value (a small array), and every party sums the values of all
the others: each value is pushed to every other party, N*(N-1) pushes a round. Every party checks
the sums and prints ``<party> ROUND r <seconds> <unix time at its end>`` and finally ``<party> OK``. The parties start
Ray, then meet at a file rendezvous in MARKS_DIR, so the rounds do not include Ray's start.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import ray
from common import args, cluster

import fed


@fed.remote
def make(party_index: int, r: int):
    return np.full(100, party_index * 1000 + r, dtype=np.int64)


@fed.remote
def total(*values):
    return int(sum(int(v.sum()) for v in values))


def main() -> None:
    party, addrs, (rounds, marks) = args()
    names = list(addrs)
    ray.init(address="local", include_dashboard=False)
    (Path(marks) / party).touch()
    while not all((Path(marks) / p).exists() for p in names):
        time.sleep(0.05)
    fed.init(cluster=cluster(addrs), party=party)
    for r in range(1, int(rounds) + 1):
        started = time.monotonic()
        values = {p: make.party(p).remote(i, r) for i, p in enumerate(names)}
        sums = [total.party(q).remote(*(v for p, v in values.items() if p != q)) for q in names]
        got = fed.get(sums)
        expected = [100 * sum(i * 1000 + r for i, p in enumerate(names) if p != q) for q in names]
        if got != expected:
            sys.exit(f"{party} round {r}: sums {got}, expected {expected}")
        print(f"{party} ROUND {r} {time.monotonic() - started:.4f} {time.time():.3f}", flush=True)
    fed.shutdown()
    ray.shutdown()
    print(f"{party} OK", flush=True)


if __name__ == "__main__":
    main()
