"""A party that stops while its peer waits for a value from it: alice must raise, promptly.

    failures.py PARTY ADDRESSES_JSON MODE [outbound]

With ``outbound``, bob is outbound-only (listens nowhere; alice reaches him over his standbys).

alice waits for ``slow`` at bob. bob, two seconds after both met (on a value of alice's),
instead of running ``slow``:
``killed`` — SIGKILLs its own driver (no goodbye: alice notices by liveness pings);
``frozen`` — SIGSTOPs every process of its session, its Ray included, itself last (a machine
gone without closing its connections: the kernel still accepts, nothing answers; the test kills
bob afterwards); ``killed_mid_transfer`` — the value alice waits for is 1 GB, and bob's driver is SIGKILLed half
a second into pushing it;
``raises`` — dies of an uncaught ValueError; ``interrupted`` — gets Ctrl+C (SIGINT);
``shutdown_in_except`` — catches a ValueError and calls fed.shutdown() in the except block;
``finished`` — ends its program normally (it made fewer calls: divergence);
``other_function`` — calls ``fast`` at bob instead (divergence: the value arrives with another
fingerprint); ``other_party`` — calls ``slow`` at alice instead (divergence: each waits for the
other, until their pings compare the digests of their calls).
For ``raises``, ``interrupted``, ``shutdown_in_except`` and ``finished`` liveness pings are
slowed to 60 s, so only bob's goodbye can end alice's wait.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import ray
from common import args, cluster, make, receiver_counts

import fed
from fed._cli.sessions import session_pids


@fed.remote
def slow():
    time.sleep(3600)
    return 1


@fed.remote
def fast():
    return 2


@fed.remote
def big():
    return np.ones(10**9, dtype=np.uint8)


def main() -> None:
    party, addrs, (mode, *how) = args()
    parties = cluster(addrs)
    if how == ["outbound"]:
        parties["bob"] = {"outbound_only": True}
    if mode == "interrupted":  # Ctrl+C reaches a program started from a terminal, whatever started this test
        signal.signal(signal.SIGINT, signal.default_int_handler)
    liveness = 60_000 if mode in ("raises", "interrupted", "shutdown_in_except", "finished") else 5000
    fed.init(address="local", cluster=parties, party=party,
             config={"cross_silo_comm": {"liveness_timeout_in_ms": liveness}})
    # fed.init's barrier may end at bob before it does at alice: meet on a value of alice's first,
    # so bob stops only once alice is past fed.init.
    fed.get(make.party("alice").remote("ready"))
    if mode == "killed_mid_transfer":
        value = big.party("bob").remote()
        if party == "bob":
            ray.wait([value._ref])  # made; now push it and die on the way
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGKILL)).start()
            print(f"bob STOPPING at {time.time() + 0.5}", flush=True)
        try:
            print(f"{party} GOT {fed.get(value).nbytes}", flush=True)
        except fed.FedError as exc:
            print(f"alice RAISED at {time.time()} {type(exc).__name__}: {exc}", flush=True)
            print(f"alice COUNTS {receiver_counts()}", flush=True)
        fed.shutdown()
        return
    if party == "bob":
        time.sleep(2)
        print(f"bob STOPPING at {time.time()}", flush=True)
        if mode == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "frozen":
            for pid in set(session_pids(os.getsid(0))) - {os.getpid()}:
                os.kill(pid, signal.SIGSTOP)
            os.kill(os.getpid(), signal.SIGSTOP)
        if mode == "raises":
            raise ValueError("bob's program failed")
        if mode == "shutdown_in_except":
            try:
                raise ValueError("bob's program failed")
            except ValueError:
                fed.shutdown()
                return
        if mode == "interrupted":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(60)
        if mode in ("other_function", "other_party"):
            value = fast.party("bob").remote() if mode == "other_function" else slow.party("alice").remote()
            try:
                fed.get(value)
            except fed.FedError as exc:
                print(f"bob RAISED {type(exc).__name__}: {exc}", flush=True)
        fed.shutdown()
        return
    value = slow.party("bob").remote()
    try:
        fed.get(value)
    except fed.FedError as exc:
        print(f"alice RAISED at {time.time()} {type(exc).__name__}: {exc}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
