"""Single-controller mode keeps what crossing parties checks; run it with ``fed run --single``.

    fed run --single --parties alice,bob single_checks.py ADDRESSES_JSON

Prints ``CHECK <name> OK`` for each of: tasks and actors placed by their party's resource; a value
of a class off the allow-list refused when it would cross to bob (and at fed.get), but usable at
its own party; the same value crossing once the class is allow-listed; a value over
``messages_max_size_in_bytes`` refused; nothing listening on the parties' addresses.
"""

from __future__ import annotations

import json
import socket
import sys

import ray
from common import nbytes, ones, total
from perimeter_types import Weights

import fed


@fed.remote
def resources_here():
    return sorted(k for k in ray.get_runtime_context().get_assigned_resources() if k.startswith("fed_party_"))


@fed.remote
class Where:
    def resources(self):
        return sorted(k for k in ray.get_runtime_context().get_assigned_resources() if k.startswith("fed_party_"))


@fed.remote
def weights():
    return Weights([1.0, 2.0])


def expect_error(what, text):
    try:
        result = what()
    except fed.FedError as exc:
        assert text in str(exc), exc
        return str(exc)
    raise AssertionError(f"expected an error naming {text!r}, got {result!r}")


def main() -> None:
    party, addrs = sys.argv[1], json.loads(sys.argv[2])
    cluster = {p: {"address": a} for p, a in addrs.items()}
    fed.init(address="local", cluster=cluster, party=party,
             config={"cross_silo_comm": {"messages_max_size_in_bytes": 100_000}})
    assert fed.get(resources_here.party("bob").remote()) == ["fed_party_bob"]
    assert fed.get(Where.party("alice").remote().resources.remote()) == ["fed_party_alice"]
    print("CHECK placement OK", flush=True)

    w = weights.party("alice").remote()
    assert fed.get(total.party("alice").remote(w)) == 3.0  # at its own party it does not cross
    message = expect_error(lambda: fed.get(total.party("bob").remote(w)), "perimeter_types.Weights")
    assert "serializing_allowed_list" in message and "party 'alice'" in message, message
    expect_error(lambda: fed.get(w), "perimeter_types.Weights")
    print(f"CHECK refused OK: {message}", flush=True)

    assert fed.get(nbytes.party("bob").remote(ones.party("alice").remote(50_000))) == 50_000
    message = expect_error(lambda: fed.get(nbytes.party("bob").remote(ones.party("alice").remote(200_000))),
                           "over messages_max_size_in_bytes=100000")
    print(f"CHECK size OK: {message}", flush=True)

    for address in addrs.values():
        host, port = address.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            continue
        raise AssertionError(f"something listens on {address} in single-controller mode")
    stats = fed.stats()
    assert stats["peers"] == {} and stats["total"]["sent_values"] == 0, stats  # nothing crossed a network
    print("CHECK no listening OK", flush=True)
    fed.shutdown()

    fed.init(address="local", cluster=cluster, party=party,
             config={"cross_silo_comm": {"serializing_allowed_list": {"perimeter_types": ["Weights"]}}})
    w = weights.party("alice").remote()
    assert fed.get(total.party("bob").remote(w)) == 3.0
    assert fed.get(w).values == [1.0, 2.0]
    print("CHECK allowed OK", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
