"""Many values between three parties with random placement and delays; each must arrive exactly once.

    soak.py PARTY ADDRESSES_JSON SMALL LARGE

Every party draws the same plan from one seed. Item i goes from a random party to another random
party, which uses it in a task; every party then fed.gets that task's result. So each item
makes every party receive exactly one value: the destination receives the item, the two others
the result. Small items are ints, large ones 8 MB arrays (checked by digest). Some tasks sleep a
random few milliseconds. At the end each party prints its receiver's counts.
"""

from __future__ import annotations

import hashlib
import json
import random
import time

import numpy as np
from common import args, cluster, receiver_counts

import fed

PARTIES = ("alice", "bob", "carol")
BATCH = 500


@fed.remote
def make(i, pause):
    if pause:
        time.sleep(pause)
    return i


@fed.remote
def plus_one(x):
    return x + 1


@fed.remote
def make_large(i):
    return np.random.default_rng(i).integers(0, 256, 8_000_000, dtype=np.uint8)


@fed.remote
def digest(x):
    return hashlib.sha256(x.tobytes()).hexdigest()


def main() -> None:
    party, addrs, (small, large) = args()
    small, large = int(small), int(large)
    fed.init(address="local", cluster=cluster(addrs), party=party,
             config={"cross_silo_comm": {"timeout_in_ms": 120_000}})
    plan = random.Random(2026)
    started = time.monotonic()
    for first in range(0, small, BATCH):
        results = []
        for i in range(first, min(first + BATCH, small)):
            src, dst = plan.sample(PARTIES, 2)
            pause = plan.choice([0, 0, 0, 0.001, 0.005])
            results.append(plus_one.party(dst).remote(make.party(src).remote(i, pause)))
        got = fed.get(results)
        assert got == list(range(first + 1, first + len(results) + 1)), f"batch at {first} is wrong"
    digests, expected = [], []
    for i in range(large):
        src, dst = plan.sample(PARTIES, 2)
        digests.append(digest.party(dst).remote(make_large.party(src).remote(i)))
        expected.append(hashlib.sha256(np.random.default_rng(i).integers(0, 256, 8_000_000, dtype=np.uint8)
                                       .tobytes()).hexdigest())
    assert fed.get(digests) == expected, "a large value changed on the way"
    print(f"{party} SOAK OK {small} small and {large} large in {time.monotonic() - started:.1f} s", flush=True)
    print(f"{party} COUNTS {json.dumps(receiver_counts())}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
