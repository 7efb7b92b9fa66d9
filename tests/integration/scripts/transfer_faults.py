"""Transfers that meet trouble on the way: a producer slower than timeout_in_ms, a cut connection.

    transfer_faults.py PARTY ADDRESSES_JSON CLUSTER_JSON MARKS_DIR

alice reaches bob through the test's fault proxy (bob's ``address`` is the proxy, his
``listen_addr`` his real port). timeout_in_ms is 3 s. First bob waits for a value alice's task
takes 6 s to make; then alice sends bob 200 MB, which the proxy cuts after 50 MB; bob reports a
digest of what he got and how many values his receiver took. The parties start Ray, then meet
at a file rendezvous, so that fed.init's barrier (also bounded by the 3 s) finds both.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

import numpy as np
import ray
from common import meet, receiver_counts

import fed


@fed.remote
def slow_value():
    time.sleep(6)
    return "worth the wait"


@fed.remote
def echo(x):
    return x


@fed.remote
def big():
    return np.random.default_rng(7).integers(0, 256, 200_000_000, dtype=np.uint8)


@fed.remote
def digest(x):
    return hashlib.sha256(x.tobytes()).hexdigest()


def main() -> None:
    party, cluster, marks = sys.argv[1], json.loads(sys.argv[3]), sys.argv[4]
    ray.init(address="local", include_dashboard=False)
    meet(marks, party, cluster)
    fed.init(cluster=cluster, party=party,
             config={"cross_silo_comm": {"timeout_in_ms": 3000, "liveness_timeout_in_ms": 1000}})
    print(f"{party} SLOW {fed.get(echo.party('bob').remote(slow_value.party('alice').remote()))}", flush=True)

    value = big.party("alice").remote()
    print(f"{party} DIGEST {fed.get(digest.party('bob').remote(value))}", flush=True)
    print(f"{party} EXPECTED {fed.get(digest.party('alice').remote(value))}", flush=True)
    if party == "bob":
        print(f"bob COUNTS {json.dumps(receiver_counts())}", flush=True)
    fed.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
