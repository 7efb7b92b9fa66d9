"""Many values in flight at once between two parties, with a cap on what bob's receiver holds.

    in_flight.py PARTY ADDRESSES_JSON SMALL LARGE LARGE_MB CAP_MB

alice makes SMALL small values and LARGE values of LARGE_MB MB; every one of them goes to bob at
once. bob's program is behind: it asks for none of them until his receiver has refused a push for
lack of room (``max_buffered_bytes`` = CAP_MB), so the values arrive early and pile up to the cap.
Then bob sums the small values in groups of 1,000 and reads the first byte of each large one.
Both parties print what they checked and their ``fed.stats()``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import ray
from common import args, cluster

import fed

MB = 1 << 20
GROUP = 1000


@fed.remote
def make_small(n: int):
    return tuple(np.full(4, i, dtype=np.int64) for i in range(n))


@fed.remote
def make_large(i: int, size: int):
    return np.full(size, i % 251, dtype=np.uint8)


@fed.remote
def add_up(*values):
    return int(sum(int(v[0]) for v in values))


@fed.remote
def first_byte(array):
    return int(array[0])


def main() -> None:
    party, addrs, rest = args()
    n_small, n_large, large_mb, cap_mb = (int(x) for x in rest)
    ray.init(address="local", include_dashboard=False)
    comm = {"max_buffered_bytes": cap_mb * MB}
    fed.init(cluster=cluster(addrs), party=party, config={"cross_silo_comm": comm}, logging_level="info")
    started = time.monotonic()
    small = make_small.party("alice").options(num_returns=n_small).remote(n_small)
    large = [make_large.party("alice").remote(i, large_mb * MB) for i in range(n_large)]
    if party == "bob":
        wait_for_refusal(deadline=time.monotonic() + 120)
    sums = [add_up.party("bob").remote(*small[s:s + GROUP]) for s in range(0, n_small, GROUP)]
    firsts = [first_byte.party("bob").remote(a) for a in large]
    got_sums, got_firsts = fed.get(sums), fed.get(firsts)
    if got_sums != [sum(range(s, min(s + GROUP, n_small))) for s in range(0, n_small, GROUP)]:
        sys.exit(f"{party}: wrong sums {got_sums}")
    if got_firsts != [i % 251 for i in range(n_large)]:
        sys.exit(f"{party}: wrong first bytes {got_firsts}")
    print(f"{party} CHECKED {len(got_sums)} sums and {len(got_firsts)} large values in "
          f"{time.monotonic() - started:.1f} s", flush=True)
    print(f"{party} STATS {json.dumps(fed.stats())}", flush=True)
    fed.shutdown()
    ray.shutdown()


def wait_for_refusal(deadline: float) -> None:
    """Until bob's receiver has refused a push for lack of room: the values piled up to the cap."""
    while fed.stats()["total"]["refused"] == 0:
        if time.monotonic() > deadline:
            sys.exit("bob: no push was ever refused: nothing reached the cap")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
