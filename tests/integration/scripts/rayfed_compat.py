"""RayFed 0.2's public surface across real parties: fed.send/recv, fed.exceptions, fed.config,
FedObject.get_party/get_fed_task_id, and its config keys. Prints COMPAT OK when all hold."""

from __future__ import annotations

import numpy as np
import ray
from common import add, args, cluster, make

import fed
import fed.config
import fed.exceptions

COMM = {
    "timeout_in_ms": 30_000,
    "grpc_retry_policy": {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "1s", "backoffMultiplier": 2,
                          "retryableStatusCodes": ["UNAVAILABLE", "DEADLINE_EXCEEDED"]},
    "grpc_channel_options": [("grpc.primary_user_agent", "rayfed-compat-test"),
                             ("grpc.max_send_message_length", 100 * 1024 * 1024)],
    "proxy_max_restarts": None,
    "continue_waiting_for_data_sending_on_error": False,
}


def job(party: str, addrs: dict[str, str]) -> list[str]:
    fed.init(address="local", cluster=cluster(addrs), party=party, config={"cross_silo_comm": COMM},
             job_name="compat")
    assert fed.config.get_job_config().cross_silo_comm_config_dict == COMM
    assert fed.config.get_job_config("compat").cross_silo_comm_config_dict["timeout_in_ms"] == 30_000
    assert fed.config.get_cluster_config().current_party == party
    x = make.party("alice").remote(2)
    y = add.party("bob").remote(x, 3)
    ids = [x.get_fed_task_id(), y.get_fed_task_id()]
    assert (x.get_party(), y.get_party()) == ("alice", "bob")
    assert fed.get(y) == 5
    if party == "alice":
        assert ray.get(fed.send("bob", ray.put(np.arange(5)), 1, 2)) is True  # int ids, an ObjectRef
        assert ray.get(fed.send("bob", {"k": "v"}, "up-a", "down-b")) is True  # str ids, a plain value
        assert ray.get(fed.send("bob", x, 7, 8)) is True  # a FedObject alice owns
        got = ray.get(fed.recv("alice", "bob", 3, 4))
        assert got == [1, 2, 3], got
    else:
        assert np.array_equal(ray.get(fed.recv("bob", "alice", 1, 2)), np.arange(5))
        assert ray.get(fed.recv("bob", "alice", "up-a", "down-b")) == {"k": "v"}
        assert ray.get(fed.recv("bob", "alice", 7, 8)) == 2
        assert ray.get(fed.send("alice", [1, 2, 3], 3, 4)) is True
    try:
        fed.get(_fails.party("alice").remote())
    except fed.exceptions.FedRemoteError as exc:  # bob: the same class as fed.FedRemoteError
        assert party == "bob" and isinstance(exc, fed.FedRemoteError)
    except ValueError:
        assert party == "alice"
    fed.shutdown()
    return ids


@fed.remote
def _fails():
    raise ValueError("no")


def main() -> None:
    party, addrs, _ = args()
    first = job(party, addrs)
    again = job(party, addrs)  # the same program after a new fed.init: the same task ids
    assert first == again == ["1#0", "2#0"], (first, again)
    print(f"{party} COMPAT OK", flush=True)


if __name__ == "__main__":
    main()
