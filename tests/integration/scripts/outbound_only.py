"""A job in which one party accepts no connections (``outbound_only``) and its peers still push to it.

    outbound_only.py PARTY ADDRESSES_JSON CLUSTER_JSON MARKS_DIR CERTS_DIR|-

Every party makes a small value and a 30 MB array; each party sums what every other party made
(so values cross every pair, both ways, the outbound-only party's included) and prints its
results. Each party prints the TCP ports its process listens on before and after ``fed.init``:
an outbound-only party's must not change. With CERTS_DIR, mutual TLS with ``fed certs`` files.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import ray
from common import meet, tls_files

import fed


def listening_ports() -> set[int]:
    """TCP ports this process listens on (its own sockets only)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@fed.remote
def make(seed: int):
    return seed, np.full(30_000_000 // 8, seed, dtype=np.int64)


@fed.remote
def total(*values) -> int:
    return sum(seed + int(array[-1]) + array.size for seed, array in values)


def main() -> None:
    party, cluster, marks, certs = sys.argv[1], json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
    ray.init(address="local", include_dashboard=False)
    meet(marks, party, cluster)
    before = listening_ports()
    tls = tls_files(certs, party) if certs != "-" else None
    fed.init(cluster=cluster, party=party, tls_config=tls, config={"cross_silo_comm": {"timeout_in_ms": 20_000}})
    print(f"{party} NEW LISTENING {sorted(listening_ports() - before)}", flush=True)
    parties = list(cluster)
    made = {p: make.party(p).remote(i + 1) for i, p in enumerate(parties)}
    sums = {p: total.party(p).remote(*(made[q] for q in parties if q != p)) for p in parties}
    print(f"{party} SUMS {json.dumps(fed.get([sums[p] for p in parties]))}", flush=True)
    fed.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
