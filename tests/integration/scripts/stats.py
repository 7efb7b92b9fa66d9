"""fed.stats() and the Ray metrics count what crossed: alice sends bob 20 small values and 2 MB.

    stats.py PARTY ADDRESSES_JSON

bob sums them and both get the sum (bob pushes it to alice). Each party then prints
``STATS <json>`` once its counts settle (a push is counted when its answer arrives, which may be
just after the peer used the value), and alice prints ``METRIC <line>`` for the exported Ray
metric of what she sent bob.
"""

from __future__ import annotations

import json
import time
import urllib.request

import ray
from common import args, cluster, make, ones

import fed


@fed.remote
def tally(big, *small):
    return int(big.sum()) + sum(small)


def settled(party: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        stats = fed.stats()
        row = stats["peers"]["bob" if party == "alice" else "alice"]
        if (row["sent_values"], row["received_values"]) == ((21, 1) if party == "alice" else (1, 21)):
            return stats
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)


def exported(name: str, peer: str) -> str:
    """The Prometheus line of metric ``name`` for ``peer`` on this node, once Ray exported it."""
    port = ray.nodes()[0]["MetricsExportPort"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(name + "{") and f'peer="{peer}"' in line:
                return line
        time.sleep(1)
    raise AssertionError(f"{name} for {peer} never exported")


def main() -> None:
    party, addrs, _ = args()
    fed.init(address="local", cluster=cluster(addrs), party=party)
    small = [make.party("alice").remote(i) for i in range(20)]
    big = ones.party("alice").remote(2_000_000)
    assert fed.get(tally.party("bob").remote(big, *small)) == 2_000_000 + sum(range(20))
    print(f"{party} STATS {json.dumps(settled(party))}", flush=True)
    if party == "alice":
        try:
            import prometheus_client  # noqa: F401  (Ray's metrics agent comes with ray[default])
        except ImportError:
            print("alice METRIC unavailable: Ray's metrics agent is not installed", flush=True)
        else:
            print(f"alice METRIC {exported('ray_fed_sent_values_total', 'bob')}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
