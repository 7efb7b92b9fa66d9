"""fed.init with a receiver label no node has: a clear error after timeout_in_ms, not a hang.

    unplaceable.py PARTY ADDRESSES_JSON
"""

from __future__ import annotations

import time

from common import args, cluster

import fed


def main() -> None:
    party, addrs, _ = args()
    started = time.monotonic()
    try:
        fed.init(address="local", cluster=cluster(addrs), party=party,
                 config={"cross_silo_comm": {"recv_resource_label": {"gateway": 1}, "timeout_in_ms": 3000}})
    except fed.FedError as exc:
        print(f"{party} INIT FAILED after {time.monotonic() - started:.1f} s: {exc}", flush=True)
    else:
        raise SystemExit("fed.init placed a receiver that needs a resource no node has")


if __name__ == "__main__":
    main()
