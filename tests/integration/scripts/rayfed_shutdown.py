"""RayFed 0.2's fed.shutdown(on_error=True), continue_waiting_for_data_sending_on_error and
grpc_retry_policy, across real parties.

    rayfed_shutdown.py PARTY ADDRESSES_JSON MODE CLUSTER_JSON

``abort`` / ``continue``: alice pushes 30 MB to bob through the test's slow proxy (about 6 s) and
calls fed.shutdown(on_error=True) a second later, without (``abort``) or with (``continue``)
continue_waiting_for_data_sending_on_error. ``retry``: the proxy cuts every connection after 2 MB,
and alice's grpc_retry_policy allows 3 tries of her 30 MB push.
"""

from __future__ import annotations

import json
import time

import ray
from common import args, nbytes, ones

import fed


def main() -> None:
    party, _, (mode, cluster) = args()
    comm = {"continue_waiting_for_data_sending_on_error": mode == "continue"}
    failures = []
    if mode == "retry":
        comm["grpc_retry_policy"] = {"maxAttempts": 3, "initialBackoff": "0.2s", "maxBackoff": "0.5s",
                                     "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", "INTERNAL"]}
    fed.init(address="local", cluster=json.loads(cluster), party=party, sending_failure_handler=failures.append,
             config={"cross_silo_comm": comm})
    count = nbytes.party("bob").remote(ones.party("alice").remote(30_000_000))
    started = time.monotonic()
    if mode == "retry" and party == "alice":
        while not failures and time.monotonic() - started < 60:
            time.sleep(0.05)
        print(f"alice GAVE UP after {time.monotonic() - started:.1f} s: {failures[0]}", flush=True)
        fed.shutdown()
    elif party == "alice":
        time.sleep(1)  # the push is under way
        started = time.monotonic()
        fed.shutdown(on_error=True)
        print(f"alice SHUTDOWN TOOK {time.monotonic() - started:.1f} s", flush=True)
    else:
        try:
            print(f"bob GOT {ray.get(count.get_ray_object_ref(), timeout=120)}", flush=True)
        except Exception as exc:  # noqa: BLE001 - how the wait ended is what the test checks
            print(f"bob ENDED {type(exc).__name__}: {exc}", flush=True)
        fed.shutdown()


if __name__ == "__main__":
    main()
