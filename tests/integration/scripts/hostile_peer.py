"""Two real parties over mutual TLS, where alice — with her own valid certificate — attacks bob.

    hostile_peer.py PARTY ADDRESSES_JSON CERTS_DIR MARKS_DIR CANARY

Both run the same program. Where bob waits for a value of alice's, alice first pushes, by hand
over her own TLS connection, hostile payloads under that value's id: a pickle that would run
``touch CANARY``, an object array over raw bytes, records that claim more than they hold. bob's
program gets a clear refusal for each, and goes on: the next value crosses. alice's own fed then
pushes the honest value, which bob's receiver drops as a duplicate. Prints ``PARTY ...`` lines.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import time

import grpc
import msgpack
from common import args, cluster, tls_files, wait_for

import fed
from fed._config import read_tls
from fed._security.server_proof import Checker
from fed._serialization import records, tags
from fed._transport import grpc_link, wire

M = tags.EXTS


@fed.remote
def make(x):
    return x


@fed.remote
def made_when(mark, x):
    """``x``, once ``mark`` exists (alice's own push of it waits for her hostile ones)."""
    while not os.path.exists(mark):
        time.sleep(0.05)
    return x


@fed.remote
def consume(x):
    return x * 2


def payloads(canary: str) -> list[bytes]:
    """Segment 0 of three hostile values: a pickle that runs a command, an object array over raw
    bytes, and a record that claims more bytes than it holds."""
    command = f"touch {canary}".encode()
    run_it = (b"\x80\x04" + pickle.SHORT_BINUNICODE + b"\x05posix" + pickle.SHORT_BINUNICODE + b"\x06system"
              + pickle.STACK_GLOBAL + pickle.SHORT_BINUNICODE + bytes([len(command)]) + command + pickle.TUPLE1
              + pickle.REDUCE + pickle.STOP)
    out = []
    for tree in ([M[tags.PICKLED], run_it, []], [M[tags.NDARRAY], "|O", [2], False, b"\x41" * 16]):
        record = bytearray()
        records.add(record, records.VALUE, msgpack.packb(tree, use_bin_type=True))
        out.append(bytes(record))
    out.append(bytes([records.VALUE]) + (1000).to_bytes(4, "little") + b"\xdd\xff\xff\xff\xff")
    return out


async def raw_push(addrs, tls_files, object_id, fingerprint, payload: bytes) -> str:
    """One hand-made push from alice to bob over alice's own TLS identity; bob's answer."""
    tls_config = read_tls(tls_files)
    channel = grpc_link.open_channel(addrs["bob"], "bob", tls_config, 4 << 20)
    try:
        call = channel.stream_stream(grpc_link.PUSH_METHOD)(timeout=20)
        await grpc_link.check(call, Checker(tls_config.ca_cert, "hostile", "alice"), "bob")
        await call.write(wire.encode_header(wire.Header(job="hostile", src="alice", dst="bob", object_id=object_id,
                                                        fingerprint=fingerprint, codec="fed",
                                                        segments=(len(payload),))))
        try:
            first = await call.read()
            if first is not grpc.aio.EOF and wire.decode_ack(first) == 0:
                await call.write(payload)
                await call.done_writing()
                while await call.read() is not grpc.aio.EOF:
                    pass
        except grpc.aio.AioRpcError:
            pass  # the refusal: its status is read below
        return f"{(await call.code()).name}: {await call.details()}"
    finally:
        await channel.close()


def main() -> None:
    party, addrs, (certs, marks, canary) = args()
    fed.init(address="local", cluster=cluster(addrs), party=party, job_name="hostile",
             tls_config=tls_files(certs, party), config={"cross_silo_comm": {"timeout_in_ms": 20_000}})
    assert fed.get(consume.party("bob").remote(make.party("alice").remote(1))) == 2
    print(f"{party} HONEST BEFORE 2", flush=True)

    for round_ in range(3):  # one round per hostile payload: each time bob waits, alice attacks
        mark = os.path.join(marks, f"hostile-{round_}")
        value = made_when.party("alice").remote(mark, 10 + round_)
        result = consume.party("bob").remote(value)  # bob's receiver now waits for alice's value
        if party == "bob":
            while fed.stats()["waiting"]["awaited"] < 1:
                time.sleep(0.05)
            open(os.path.join(marks, f"bob-waits-{round_}"), "w").close()
        else:
            wait_for(os.path.join(marks, f"bob-waits-{round_}"))
            answer = asyncio.run(raw_push(addrs, tls_files(certs, "alice"), value.object_id, value.fingerprint,
                                          payloads(canary)[round_]))
            print(f"alice HOSTILE ANSWER {answer}", flush=True)
            open(mark, "w").close()  # now alice's honest value may go
        try:
            print(f"{party} GOT {fed.get(result)}", flush=True)
        except fed.FedError as exc:
            print(f"{party} REFUSED {type(exc).__name__}: {exc}", flush=True)

    assert fed.get(consume.party("bob").remote(make.party("alice").remote(5))) == 10
    print(f"{party} HONEST AFTER 10", flush=True)
    if party == "bob":  # alice's own pushes of the three ids may still be on their way: wait for their drops
        deadline = time.monotonic() + 30
        while fed.stats()["total"]["duplicates"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    print(f"{party} STATS {fed.stats()['total']['refused']} {fed.stats()['total']['duplicates']}", flush=True)
    fed.shutdown()
    print(f"{party} CANARY {'MADE' if os.path.exists(canary) else 'UNTOUCHED'}", flush=True)


if __name__ == "__main__":
    main()
