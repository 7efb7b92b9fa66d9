"""proxy_max_restarts across real parties: bob's receiver process is killed mid-job, Ray starts it
again, and it serves the job's next values.

    restart.py PARTY ADDRESSES_JSON MARKS_DIR
"""

from __future__ import annotations

import os
import signal
import time

import ray
from common import add, args, cluster, make, wait_for

import fed
from fed._runtime import context


def main() -> None:
    party, addrs, (marks,) = args()
    fed.init(address="local", cluster=cluster(addrs), party=party,
             config={"cross_silo_comm": {"proxy_max_restarts": 1}})
    print(f"{party} FIRST {fed.get(add.party('bob').remote(make.party('alice').remote(1), 10))}", flush=True)
    if party == "bob":
        receiver = context.current().receiver
        before = ray.get(receiver.actor.pid.remote())
        os.kill(before, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:  # calls fail while Ray restarts the actor
            try:
                after = ray.get(receiver.actor.pid.remote(), timeout=10)
                break
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        print(f"bob RESTARTED {after != before}", flush=True)
        open(os.path.join(marks, "restarted"), "w").close()
    else:
        wait_for(os.path.join(marks, "restarted"))
    print(f"{party} SECOND {fed.get(add.party('bob').remote(make.party('alice').remote(2), 10))}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
