"""A value its owner will never push: the waiting party learns it within seconds instead of hanging.

``never_sent.py PARTY ADDRESSES_JSON MODE``. ``skip``: alice's fed drops the push of ``x`` to bob
on purpose (as a bug would). ``failed``: the push fails at alice without telling bob (as an
encoding failure did before the error frame). ``actor``: alice creates an actor at bob from ``x`` with the
constructor's pushes switched off, as before the fix that made constructors push their arguments.
Each party prints how its wait ended, and how long it took.
"""

from __future__ import annotations

import concurrent.futures
import time

from common import add, args, cluster, make

import fed
from fed._exceptions import FedSendError
from fed._runtime import context


@fed.remote
class Acc:
    def __init__(self, start):
        self.total = start

    def value(self):
        return self.total


def main() -> None:
    party, addrs, (mode,) = args()
    fed.init(address="local", cluster=cluster(addrs), party=party)
    runtime = context.current()
    x = make.party("alice").remote(5)
    if party == "alice" and mode == "skip":
        push = runtime.push
        runtime.push = lambda obj, dst: None if obj is x else push(obj, dst)
    if party == "alice" and mode == "failed":
        send = runtime.sender.send

        def failing(dst, object_id, fingerprint, ref):
            if object_id != x.object_id:
                return send(dst, object_id, fingerprint, ref)
            failed = concurrent.futures.Future()
            failed.set_exception(FedSendError("cannot encode it (simulated), and bob was not told"))
            return failed
        runtime.sender.send = failing
    if mode == "actor":
        push_args, runtime.push_args = runtime.push_args, lambda *a: None
        result = Acc.party("bob").remote(x).value.remote()
        runtime.push_args = push_args
    else:
        result = add.party("bob").remote(x, 1)
    started = time.monotonic()
    try:
        print(f"{party} RESULT {fed.get(result)}", flush=True)
    except Exception as exc:  # noqa: BLE001 - how the wait ended is what the test checks
        print(f"{party} ENDED {type(exc).__name__}: {exc}", flush=True)
    print(f"{party} WAITED {time.monotonic() - started:.1f} s", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
