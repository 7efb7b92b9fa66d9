"""The data perimeter across real parties: allow-list, a value that would run a command, the audit log.

    perimeter.py PARTY ADDRESSES_JSON CANARY AUDIT_DIR

Job ``safe`` (defaults plus an allow-listed class): the allow-listed Weights cross; an Exploit,
which unpickles as ``os.system('touch CANARY')``, is refused at bob (the error names
``posix.system``), alice is told, and the canary is never made. Job ``unsafe``: bob sets
``allow_unsafe_deserialization``, and the same value does run the command — so the canary check
above can fail. Job ``capped``: bob's ``max_buffered_bytes`` holds alice's pushes back until
bob's program consumes what it holds.
"""

from __future__ import annotations

import json
import os
import time

import perimeter_types
import ray
from common import args, nbytes, ones, total

import fed


@fed.remote
def make_weights():
    return perimeter_types.Weights([1, 2, 3])


@fed.remote
def make_exploit(command):
    return perimeter_types.Exploit(command)


@fed.remote
def describe(x):
    return repr(x)


def main() -> None:
    party, addrs, (canary, audit_dir) = args()
    perimeter_types.ARMED = party == "alice"
    ray.init(address="local", include_dashboard=False)
    comm = {"serializing_allowed_list": {"perimeter_types": ["Weights"]}, "timeout_in_ms": 20_000}
    fed.init(addresses=addrs, party=party, job_name="safe",
             config={"cross_silo_comm": comm, "audit_log_file": os.path.join(audit_dir, f"{party}.jsonl")})
    assert fed.get(total.party("bob").remote(make_weights.party("alice").remote())) == 6
    print(f"{party} ALLOWED CLASS CROSSED")

    seen = describe.party("bob").remote(make_exploit.party("alice").remote(f"touch {canary}"))
    try:
        fed.get(seen)
    except fed.FedError as exc:
        print(f"{party} REFUSED {type(exc).__name__}: {exc}")
    else:
        raise SystemExit(f"{party}: the exploit was accepted")
    fed.shutdown()
    print(f"{party} AUDIT {json.dumps(fed.audit_log())}")
    assert not os.path.exists(canary), "the command ran"
    print(f"{party} CANARY UNTOUCHED")

    comm = {"allow_unsafe_deserialization": party == "bob", "timeout_in_ms": 20_000}
    fed.init(addresses=addrs, party=party, job_name="unsafe", config={"cross_silo_comm": comm})
    seen = describe.party("bob").remote(make_exploit.party("alice").remote(f"touch {canary}"))
    print(f"{party} UNSAFE GOT {fed.get(seen)!r}")
    fed.shutdown()
    print(f"{party} CANARY {'MADE' if os.path.exists(canary) else 'ABSENT'}")

    # bob buffers at most 1.5 MB of values he has not consumed: alice's three 1 MB values wait
    # at alice until bob's program, busy for 3 s, takes them one by one.
    comm = {"max_buffered_bytes": 1_500_000, "timeout_in_ms": 20_000}
    fed.init(addresses=addrs, party=party, job_name="capped", config={"cross_silo_comm": comm},
             logging_level="info")
    arrays = [ones.party("alice").remote(10**6) for _ in range(3)]
    if party == "bob":
        time.sleep(3)
    print(f"{party} CAPPED {fed.get([nbytes.party('bob').remote(a) for a in arrays])}")
    fed.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
