"""Every API point across two parties; each party asserts what it sees and prints FEATURES OK."""

from __future__ import annotations

import time

import ray
from common import add, args, cluster, make, receiver_counts

import fed


@fed.remote
def read_nested(data):
    # FedObjects nested in containers arrive as Ray ObjectRefs, like Ray's own nested refs.
    assert isinstance(data["a"][0], ray.ObjectRef) and isinstance(data["a"][1][0], ray.ObjectRef)
    return ray.get(data["a"][0]) + fed.get(data["a"][1][0]) + ray.get(data["k"])


@fed.remote
def total(*parts, named=0):
    return sum(parts) + named


@fed.remote
def pair(x):
    return x, x * 10


@fed.remote
class Acc:
    def __init__(self, start, extra):
        self.v = start + ray.get(extra[0])

    def add(self, x, more=None):
        self.v += x + (ray.get(more["m"][0]) if more else 0)
        return self.v

    def split(self):
        return self.v, -self.v


def main() -> None:
    party, addrs, _ = args()
    fed.init(address="local", cluster=cluster(addrs), party=party)
    a = make.party("alice").remote(1)
    b = make.party("bob").remote(2)

    assert fed.get(add.party("bob").remote(a, b)) == 3                         # top level
    nested = {"a": [a, (b,)], "k": a}
    assert fed.get(read_nested.party("bob").remote(nested)) == 4               # nested at bob
    assert fed.get(read_nested.party("alice").remote(nested)) == 4             # nested at alice
    assert fed.get(total.party("alice").remote(a, 10, named=b)) == 13          # kwargs
    x, y = pair.party("bob").options(num_returns=2).remote(a)                  # num_returns
    assert fed.get([x, y]) == [1, 10]

    acc = Acc.party("bob").remote(a, [b])                                      # actor at bob
    assert fed.get(acc.add.remote(a, more={"m": [b]})) == 6
    s1, s2 = acc.split.options(num_returns=2).remote()
    assert fed.get([s1, s2, a, b]) == [6, -6, 1, 2]                            # mixed owners

    try:
        make.party("carol").remote(1)
    except ValueError as exc:
        assert "carol" in str(exc)
    else:
        raise AssertionError("unknown party accepted")

    doomed = Acc.party("alice").remote(0, [a])
    assert fed.get(doomed.add.remote(1)) == 2
    fed.kill(doomed)
    # Like ray.kill, the kill takes effect asynchronously: a call made at once may still run.
    # Every party sees the same outcome of each call, so they leave the loop together.
    attempts = 0
    while True:
        attempts += 1
        try:
            fed.get(doomed.add.remote(1))
        except fed.FedRemoteError as exc:
            assert party == "bob" and exc.src_party == "alice", exc
            break
        except ray.exceptions.RayActorError:
            assert party == "alice"
            break
        assert attempts < 50, "calls on a killed actor keep succeeding"
        time.sleep(0.1)

    # Each value crossed at most once per party. Bob took `a` once though five of his calls use it,
    # plus the three fed.get results alice owns and the killed actor's answers. Alice took `b` once
    # though she used it three times, plus seven fed.get results bob owns.
    counts = receiver_counts()
    print(f"{party} COUNTS {counts}")
    assert counts["duplicates"] == 0, counts
    expected = {"alice": 8, "bob": 4 + attempts}[party]
    assert counts["values"] == expected, (counts, expected)
    fed.shutdown()
    print(f"{party} FEATURES OK")


if __name__ == "__main__":
    main()
