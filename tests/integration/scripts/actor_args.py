"""Actors created at a party from values another party owns and has not sent there yet: at the top
level, nested in containers and as keyword arguments (each value is fresh, so only the
constructor call can bring it). Each party prints ACTOR ARGS OK."""

from __future__ import annotations

import ray
from common import args, cluster, make

import fed


@fed.remote
class Holder:
    def __init__(self, start, extra, named=0, more=None):
        # top-level arguments arrive as values, nested ones as ObjectRefs, as in Ray
        self.v = start + ray.get(extra[0]) + named + ray.get(more["m"][0])

    def value(self):
        return self.v


def main() -> None:
    party, addrs, _ = args()
    fed.init(address="local", cluster=cluster(addrs), party=party)
    for owner, at in (("alice", "bob"), ("bob", "alice")):
        top, nested, named, deep = (make.party(owner).remote(i) for i in (1, 10, 100, 1000))
        holder = Holder.party(at).remote(top, [nested], named=named, more={"m": [deep]})
        assert fed.get(holder.value.remote()) == 1111, owner
    fed.shutdown()
    print(f"{party} ACTOR ARGS OK")


if __name__ == "__main__":
    main()
