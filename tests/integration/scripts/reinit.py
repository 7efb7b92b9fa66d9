"""fed.init, a job, fed.shutdown — twice in one process, on other ports and another job."""

from __future__ import annotations

import json

import ray
from common import add, args, cluster, make

import fed


def one_job(party: str, addrs: dict[str, str], job: str, base: int, stale=None):
    fed.init(address="local", cluster=cluster(addrs), party=party, job_name=job)
    if stale is not None:
        try:
            fed.get(stale)
        except ValueError as exc:
            assert "earlier fed.init" in str(exc), exc
            print(f"{party} STALE REFUSED", flush=True)
        else:
            raise AssertionError("a FedObject from the last job was accepted")
    first = make.party("alice").remote(base)
    assert first.call_id == 1, f"call ids carried over from the last job: {first!r}"
    value = fed.get(add.party("bob").remote(first, make.party("bob").remote(1)))
    print(f"{party} RESULT {job} {value}")
    fed.shutdown()
    assert not ray.is_initialized(), "fed.shutdown left the Ray it started running"
    return first


def main() -> None:
    party, addrs, rest = args()
    old = one_job(party, addrs, "first", 10)
    one_job(party, json.loads(rest[0]), "second", 20, stale=old)
    print(f"{party} REINIT OK")


if __name__ == "__main__":
    main()
