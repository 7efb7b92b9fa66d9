"""A task that raises: the owner sees its own exception, the others FedRemoteError; nobody hangs."""

from __future__ import annotations

import sys

from common import add, args, cluster, make

import fed


@fed.remote
def boom(x):
    raise ValueError(f"bad value {x}")


def main() -> None:
    party, addrs, rest = args()
    expose = rest == ["--expose"]
    fed.init(address="local", cluster=cluster(addrs), party=party,
             config={"cross_silo_comm": {"expose_error_trace": expose}})
    failed = boom.party("alice").remote(1)
    try:
        fed.get(failed)
    except fed.FedRemoteError as exc:
        assert party == "bob", f"the owner got {exc!r}"
        assert exc.src_party == "alice" and exc.error_type == "ValueError", exc
        assert ("bad value 1" in str(exc)) == expose, exc
        print(f"{party} REMOTE ERROR {exc}")
    except ValueError as exc:
        assert party == "alice"
        assert "bad value 1" in str(exc)
        print(f"{party} OWN ERROR ValueError")

    # A value that depends on the failed one fails at its owner (bob) and everywhere else.
    downstream = add.party("bob").remote(failed, 1)
    try:
        fed.get(downstream)
    except fed.FedRemoteError as exc:
        assert exc.src_party == "alice" and exc.error_type == "ValueError", exc
        print(f"{party} DOWNSTREAM ERROR from {exc.src_party}")
    else:
        sys.exit("downstream of a failed task succeeded")

    # The job goes on after errors.
    assert fed.get(add.party("bob").remote(make.party("alice").remote(2), 3)) == 5
    fed.shutdown()
    print(f"{party} ERRORS OK")


if __name__ == "__main__":
    main()
