"""fed.init on a port someone else holds is a clear error, not a shared port."""

from __future__ import annotations

import socket

import ray
from common import args, cluster

import fed


def main() -> None:
    party, addrs, _ = args()
    holder = socket.socket()
    holder.bind(("127.0.0.1", int(addrs[party].rsplit(":", 1)[1])))
    holder.listen()
    try:
        fed.init(address="local", cluster=cluster(addrs), party=party)
    except OSError as exc:
        assert "taken" in str(exc) and addrs[party] in str(exc), exc
        print(f"PORT TAKEN: {exc}")
    else:
        raise AssertionError("fed.init shared a taken port")
    assert not ray.is_initialized(), "a failed fed.init left its Ray running"


if __name__ == "__main__":
    main()
