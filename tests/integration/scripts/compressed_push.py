"""A compressed push between real parties: alice sends bob text-like rows and float32 weights.

    compressed_push.py PARTY ADDRESSES_JSON CLUSTER_JSON MARKS_DIR

alice compresses what she pushes to bob (``compression: {'bob': 'zstd'}``, the same script at
both); she reaches him through the test's proxy, which counts the bytes. bob prints a digest of
what he got and how many values his receiver took.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import ray
from common import meet, received_from

import fed

TEXT, WEIGHTS = 48 << 20, 16 << 20


@fed.remote
def produce():
    rng = np.random.default_rng(7)
    words = np.array([f"{w}," for w in ("alice", "bob", "carol", "hospital", "2026-12-03", "42", "3.14159",
                                        "true", "false", "patient", "visit", "none")] + ["\n"], dtype=object)
    text = "".join(words[rng.integers(0, len(words), TEXT // 5)]).encode()[:TEXT]
    weights = rng.normal(0, 0.05, WEIGHTS // 4).astype(np.float32)
    return text, weights


@fed.remote
def digest(value):
    text, weights = value
    return hashlib.sha256(text + weights.tobytes()).hexdigest()


def main() -> None:
    party, cluster, marks = sys.argv[1], json.loads(sys.argv[3]), sys.argv[4]
    ray.init(address="local", include_dashboard=False)
    meet(marks, party, cluster)
    fed.init(cluster=cluster, party=party, config={"cross_silo_comm": {
        "timeout_in_ms": 20_000, "compression": {"bob": "zstd"}}})
    value = produce.party("alice").remote()
    print(f"{party} DIGEST {fed.get(digest.party('bob').remote(value))}", flush=True)
    print(f"{party} EXPECTED {fed.get(digest.party('alice').remote(value))}", flush=True)
    if party == "bob":
        alice, stats = received_from("alice")
        print(f"bob STATS {json.dumps({'values': alice.get('values'), 'bytes': alice.get('bytes')})}", flush=True)
    fed.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
