"""Three parties: alice and bob feed carol; every party gets every result."""

from __future__ import annotations

from common import add, args, cluster, make

import fed


@fed.remote
class Sum:
    def __init__(self):
        self.total = 0

    def take(self, values):
        import ray

        self.total += sum(ray.get(values))
        return self.total


def main() -> None:
    party, addrs, _ = args()
    fed.init(address="local", cluster=cluster(addrs), party=party)
    a, b, c = (make.party(p).remote(v) for p, v in (("alice", 1), ("bob", 2), ("carol", 4)))
    at_carol = add.party("carol").remote(a, b)
    summer = Sum.party("carol").remote()
    summer.take.remote([a, b, c])
    last = summer.take.remote([at_carol])
    at_alice = add.party("alice").remote(b, c)
    values = fed.get([at_carol, last, at_alice])
    print(f"{party} VALUES {values}")
    assert values == [3, 10, 6], values
    fed.shutdown()


if __name__ == "__main__":
    main()
