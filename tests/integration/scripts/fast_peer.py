"""A peer that finishes before the other party's fed.init returns.

``fast_peer.py PARTY ADDRESSES_JSON ALICE_AS_BOB_SEES_IT``: bob reaches alice at the given address
(a proxy the test keeps refusing), so bob's barrier ping never gets an answer; alice reaches bob
directly, runs her part, pushes her value to bob and finishes. bob's fed.init must pass because
alice has reached it, and bob's task must get alice's value.
"""

from __future__ import annotations

import ray
from common import add, args, cluster, make

import fed


def main() -> None:
    party, addrs, rest = args()
    if party == "bob":
        addrs = {**addrs, "alice": rest[0]}
    fed.init(address="local", cluster=cluster(addrs), party=party,
             config={"cross_silo_comm": {"timeout_in_ms": 20_000}})
    print(f"{party} PASSED THE BARRIER", flush=True)
    total = add.party("bob").remote(make.party("alice").remote(5), 1)
    if party == "bob":
        # Read at the owner without fed.get, which would push the value to alice, who is gone.
        print(f"bob RESULT {ray.get(total.get_ray_object_ref(), timeout=60)}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
