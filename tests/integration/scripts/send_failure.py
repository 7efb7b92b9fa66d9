"""A push that cannot be delivered: the handler is called and, with exit_on_sending_failure, the party stops.

``handled``: SIGINT has Python's handler, as in a program started from a terminal; ``ignored``: it
starts ignored, as in a program started in the background of a shell (``cmd &``, nohup)."""

from __future__ import annotations

import signal
import time

from common import add, args, cluster, make

import fed


def main() -> None:
    party, addrs, (sigint,) = args()
    signal.signal(signal.SIGINT, signal.default_int_handler if sigint == "handled" else signal.SIG_IGN)
    comm = {"timeout_in_ms": 2000, "exit_on_sending_failure": True}
    fed.init(address="local", cluster=cluster(addrs), party=party,
             config={"cross_silo_comm": comm, "barrier_on_initializing": False},
             sending_failure_handler=lambda exc: print(f"HANDLER CALLED {type(exc).__name__}: {exc}", flush=True))
    started = time.monotonic()
    add.party("bob").remote(make.party("alice").remote(1), 1)  # a push to bob, who never starts
    try:
        time.sleep(60)  # busy with something else: the failed push interrupts it
    except KeyboardInterrupt:
        print(f"STOPPED after {time.monotonic() - started:.1f} s", flush=True)
        raise
    print("NOT STOPPED")


if __name__ == "__main__":
    main()
