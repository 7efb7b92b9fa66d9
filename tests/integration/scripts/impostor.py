"""Mutual TLS across real parties, with an impostor that holds carol's valid certificate.

    impostor.py NAME ADDRESSES_JSON CERTS_DIR MARKS_DIR

NAME ``impostor`` (no Ray; fed's own sender and receiver classes): listens on bob's address with
carol's certificate, and pushes to alice a forged value claiming to be bob. It keeps bob's port
until alice is pushing her secret to bob, five seconds more, then frees it for the real bob.
NAME ``alice`` / ``bob``: a job with TLS where alice's secret goes to bob and bob's result to
alice; bob starts only once the impostor has freed his port.
"""

from __future__ import annotations

import asyncio
import os

from common import args, tls_files, wait_for

import fed


@fed.remote
def make(x):
    return x


@fed.remote
def double(x):
    return 2 * x


def impostor(addrs: dict[str, str], certs: str, marks: str) -> None:
    from fed._config import build_config
    from fed._exceptions import FedSendError
    from fed._transport.receiver import Receiver
    from fed._transport.sender import Sender

    # carol's certificate and key, but claiming to be bob (as sender) and listening where bob should.
    as_bob = build_config(party="bob", addresses=addrs, tls_config=tls_files(certs, "carol"),
                          config={"cross_silo_comm": {"timeout_in_ms": 60_000}})

    async def main() -> None:
        server = Receiver(as_bob)
        await server.start()
        print("IMPOSTOR LISTENING on bob's address", flush=True)
        sender = Sender(as_bob)
        sender._link._checker = None  # an impostor runs its own code: it does not check alice's proof of identity
        forged = asyncio.get_running_loop().create_future()
        forged.set_result(666)
        try:  # the id and fingerprint alice waits for from bob: the impostor knows the program
            await sender.send("alice", "2:0", "__main__.double@bob#2", [forged])
            print("IMPOSTOR PUSH ACCEPTED", flush=True)
        except FedSendError as exc:
            print(f"IMPOSTOR PUSH REFUSED {exc}", flush=True)
        await sender.stop()
        await asyncio.to_thread(wait_for, os.path.join(marks, "alice-pushing"))
        await asyncio.sleep(5)  # alice's push to bob keeps trying this server meanwhile
        print(f"IMPOSTOR SERVER TOOK {server.counts()['values']} VALUES", flush=True)
        await server.stop(0)

    asyncio.run(main())
    open(os.path.join(marks, "impostor-done"), "w").close()


def main() -> None:
    name, addrs, (certs, marks) = args()
    if name == "impostor":
        return impostor(addrs, certs, marks)
    if name == "bob":
        wait_for(os.path.join(marks, "impostor-done"))
    fed.init(address="local", cluster={p: {"address": a} for p, a in addrs.items()}, party=name,
             tls_config=tls_files(certs, name), config={"barrier_on_initializing": name == "bob",
                                                  "cross_silo_comm": {"timeout_in_ms": 60_000}})
    secret = make.party("alice").remote(21)
    doubled = double.party("bob").remote(secret)  # alice starts pushing her secret to "bob" here
    if name == "alice":
        open(os.path.join(marks, "alice-pushing"), "w").close()
    print(f"{name} RESULT {fed.get(doubled)}", flush=True)
    print(f"{name} SENT {[(e['destination'], e['outcome']) for e in fed.audit_log()]}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
