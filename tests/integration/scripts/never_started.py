"""A peer that never starts: fed.init's barrier gives up after timeout_in_ms with a clear error."""

from __future__ import annotations

import time

from common import args, cluster

import fed


def main() -> None:
    party, addrs, _ = args()
    started = time.monotonic()
    try:
        fed.init(address="local", cluster=cluster(addrs), party=party,
                 config={"cross_silo_comm": {"timeout_in_ms": 3000}})
    except fed.FedSendError as exc:
        print(f"{party} INIT FAILED after {time.monotonic() - started:.1f} s: {exc}", flush=True)
        return
    print("INIT SUCCEEDED")


if __name__ == "__main__":
    main()
