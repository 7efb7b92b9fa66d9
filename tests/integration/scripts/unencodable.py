"""A value fed cannot encode: alice's push fails at encoding, bob is told why instead of waiting.

``unencodable.py PARTY ADDRESSES_JSON MODE``: alice's task returns an instance of a class defined
inside the task (``local``), a dict holding a function defined there (``function``), or a lock
(``lock``: Ray itself cannot store it, so the task fails). With ``by_value`` both parties set
allow_unsafe_deserialization and the local class crosses as Ray would move it.
"""

from __future__ import annotations

import threading
import time

from common import args, cluster

import fed


@fed.remote
def produce(mode):
    if mode == "lock":
        return threading.Lock()
    if mode == "function":
        return {"score": 1.0, "scale": lambda x: 2 * x}

    class Local:
        def __init__(self, x):
            self.x = x
    return Local(3)


def main() -> None:
    party, addrs, (mode,) = args()
    failures = []
    fed.init(address="local", cluster=cluster(addrs), party=party, sending_failure_handler=failures.append,
             config={"cross_silo_comm": {"allow_unsafe_deserialization": mode == "by_value"}})
    value = produce.party("alice").remote(mode)
    if party == "bob":
        try:
            got = fed.get(value)
        except fed.FedRemoteError as exc:
            print(f"bob GOT {type(exc).__name__} from {exc.src_party}: {exc.error_type}: {exc.cause}", flush=True)
        else:
            print(f"bob GOT VALUE {type(got).__qualname__} x={got.x}", flush=True)
    else:
        try:
            fed.get(value)  # alice has it; the push to bob is what fails
        except Exception as exc:  # noqa: BLE001 - the lock: Ray cannot store it
            print(f"alice OWN ERROR {type(exc).__name__}", flush=True)
        deadline = time.monotonic() + 30
        while mode in ("local", "function") and not failures and time.monotonic() < deadline:
            time.sleep(0.1)
        for exc in failures:
            print(f"alice HANDLER {type(exc).__name__}: {exc}", flush=True)
    fed.shutdown()  # after its pushes ended: the audit log has them all
    for entry in fed.audit_log():
        print(f"{party} AUDIT {entry['outcome']} {entry['function']} {entry.get('reason', '')}", flush=True)


if __name__ == "__main__":
    main()
