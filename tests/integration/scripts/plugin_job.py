"""A job over the user's own proxies (tcp_proxies.py), as RayFed 0.2 programs plug them in.

    plugin_job.py PARTY ADDRESSES_JSON KIND MODE

KIND: ``pair`` (sender_proxy_cls + receiver_proxy_cls) or ``both`` (receiver_sender_proxy_cls).
MODE: ``job`` (values both ways, a 24 MB one, a failed task, fed.send/recv, and a task of bob's
that takes longer than the liveness timeout: alice's wait for it lasts only while his heartbeats
come), ``abort`` (bob stops
with an error before sending what alice waits for), ``die`` (bob's process is killed while alice
waits: only the stopped heartbeats tell her).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import ray
from common import args
from tcp_proxies import TcpBoth, TcpReceiver, TcpSender

import fed


@fed.remote
def arange(n):
    return np.arange(n, dtype=np.int64)


@fed.remote
def total(a):
    return int(a.sum())


@fed.remote
def boom():
    raise ValueError("boom at alice")


@fed.remote
def slow(seconds):
    time.sleep(seconds)
    return "late"


def main() -> None:
    party, addresses, (kind, mode) = args()
    proxies = ({"sender_proxy_cls": TcpSender, "receiver_proxy_cls": TcpReceiver} if kind == "pair"
               else {"receiver_sender_proxy_cls": TcpBoth})
    ray.init(address="local", include_dashboard=False)
    fed.init(addresses=addresses, party=party, logging_level="warning", **proxies,
             config={"cross_silo_comm": {"timeout_in_ms": 60_000, "liveness_timeout_in_ms": 2000}})
    if mode == "job":
        small = total.party("bob").remote(arange.party("alice").remote(1000))
        big = total.party("alice").remote(arange.party("bob").remote(3_000_000))  # 24 MB: one message
        late = slow.party("bob").remote(2.5)  # > liveness_timeout_in_ms: heartbeats must flow
        print(f"{party} SMALL {fed.get(small)} BIG {fed.get(big)}", flush=True)
        try:
            fed.get(boom.party("alice").remote())
        except Exception as exc:  # noqa: BLE001 - how it fails at each party is the check
            print(f"{party} BOOM {type(exc).__name__}: {exc}", flush=True)
        if party == "alice":
            fed.send("bob", {"k": [1, 2]}, 7, 8)
        else:
            print(f"bob RECV {ray.get(fed.recv('bob', 'alice', 7, 8))}", flush=True)
        print(f"{party} SLOW {fed.get(late)}", flush=True)
    elif mode in ("abort", "die"):
        late = slow.party("bob").remote(120)
        if party == "bob":
            time.sleep(3)  # alice waits meanwhile, over the proxies' heartbeats
            if mode == "die":
                os.kill(os.getpid(), 9)
            raise ValueError("bob stops with an error")
        started = time.monotonic()
        try:
            fed.get(late)
        except Exception as exc:  # noqa: BLE001 - how the wait ended is the check
            print(f"alice ENDED after {time.monotonic() - started:.1f} s: {type(exc).__name__}: {exc}", flush=True)
    fed.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
