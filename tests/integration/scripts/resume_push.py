"""A 1 GB push whose connection is cut near its end, resumed from what bob acknowledged.

    resume_push.py PARTY ADDRESSES_JSON CLUSTER_JSON MARKS_DIR

alice reaches bob through the test's fault proxy (bob's ``address`` is the proxy, his
``listen_addr`` his real port), which cuts the connection once it carried 900 MB towards bob.
bob reports a digest of what he got, how many values his receiver took and the most it held
(``waiting_peak``) under ``max_buffered_bytes`` of 1.5 GB. The parties start Ray, then meet at a
file rendezvous.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import ray
from common import meet, received_from

import fed

SIZE = 1_000_000_000
CAP = 1_500_000_000


@fed.remote
def big():
    return (np.arange(SIZE // 4, dtype=np.uint32) * 2654435761).view(np.uint8)


@fed.remote
def digest(x):
    return hashlib.sha256(x.tobytes()).hexdigest()


def main() -> None:
    party, cluster, marks = sys.argv[1], json.loads(sys.argv[3]), sys.argv[4]
    ray.init(address="local", include_dashboard=False, object_store_memory=3 * SIZE)
    meet(marks, party, cluster)
    fed.init(cluster=cluster, party=party, config={"cross_silo_comm": {
        "timeout_in_ms": 10_000, "max_buffered_bytes": CAP}})
    value = big.party("alice").remote()
    print(f"{party} DIGEST {fed.get(digest.party('bob').remote(value))}", flush=True)
    print(f"{party} EXPECTED {fed.get(digest.party('alice').remote(value))}", flush=True)
    if party == "bob":
        alice, stats = received_from("alice")
        report = {"values": alice.get("values"), "duplicates": alice.get("duplicates"),
                  "peak": stats["waiting_peak"], "cap": CAP}
        print(f"bob STATS {json.dumps(report)}", flush=True)
    fed.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
