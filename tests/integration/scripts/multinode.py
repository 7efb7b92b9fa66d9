"""One party is a multi-node Ray cluster: alice has a head node (the gateway) and a worker node.

    multinode.py PARTY ADDRESSES_JSON MARKS_DIR

alice starts a ``ray.cluster_utils.Cluster``: the head carries the resource ``gateway`` (2: her
receiver and sender take one each), the
worker node ``trainer``. Her receiver and sender are placed on the gateway (``recv_resource_label``
/ ``send_resource_label``); her tasks and an actor asking for ``trainer`` run on the worker node,
take a value that came from bob, and produce values pushed to bob. bob is a one-node party.
Each party prints ``<party> RESULT ...`` and, for alice, where things ran. alice's ``fed.init``
connects to her running cluster by its GCS address (``address=``, as in ``ray.init``). Starting
Ray nodes on a small machine takes a while, so the parties meet at a file rendezvous in MARKS_DIR
before ``fed.init`` (whose barrier waits ``timeout_in_ms``).
"""

from __future__ import annotations

import time
from pathlib import Path

import ray
from common import args, cluster

import fed


@fed.remote
def where():
    return ray.get_runtime_context().get_node_id()


@fed.remote
def scale(x, k):
    return [ray.get_runtime_context().get_node_id(), [v * k for v in x]]


@fed.remote
class Trainer:
    def __init__(self):
        self.total = 0

    def add(self, pair):
        self.total += sum(pair[1])
        return [ray.get_runtime_context().get_node_id(), self.total]


@fed.remote
def second(pair):
    return pair[1]


@fed.remote
def make_list(n):
    return list(range(n))


def main() -> None:
    party, addrs, (marks,) = args()
    config = {}
    nodes = None
    if party == "alice":
        from ray.cluster_utils import Cluster

        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"gateway": 2},
                                                              "include_dashboard": False})
        worker = nodes.add_node(num_cpus=1, resources={"trainer": 1})
        nodes.wait_for_nodes()
        labels = {"recv_resource_label": {"gateway": 1}, "send_resource_label": {"gateway": 1}}
        config = {"cross_silo_comm": labels}
    try:
        (Path(marks) / party).touch()
        while not all((Path(marks) / p).exists() for p in addrs):
            time.sleep(0.05)
        # alice's fed.init connects to her running cluster by its GCS address; bob's starts a Ray.
        fed.init(address=nodes.address if nodes else "local", cluster=cluster(addrs), party=party,
                 config=config)
        from_bob = make_list.party("bob").remote(4)                          # [0, 1, 2, 3] made at bob
        on_trainer = {"resources": {"trainer": 0.5}}
        scaled = scale.party("alice").options(**on_trainer).remote(from_bob, 10)   # on alice's worker node
        # num_cpus=0: an actor that names resources holds a CPU while it lives, and the worker node
        # has one; placed before `scale` ran, it would keep `scale` from ever running.
        trainer = Trainer.party("alice").options(num_cpus=0, **on_trainer).remote()
        added = trainer.add.remote(scaled)
        back_at_bob = second.party("bob").remote(added)                     # alice's value pushed to bob
        node_scaled, values = fed.get(scaled)
        node_added, total = fed.get(added)
        print(f"{party} RESULT {values} {total} {fed.get(back_at_bob)}", flush=True)
        if party == "alice":
            proxies = fed.stats()["nodes"]
            head = next(n["NodeID"] for n in ray.nodes() if n["Resources"].get("gateway"))
            ok = (node_scaled == node_added == worker.node_id and proxies == {"sender": head, "receiver": head})
            print(f"alice PLACED {'OK' if ok else 'WRONG'} tasks={node_scaled == worker.node_id} "
                  f"actor={node_added == worker.node_id} proxies={proxies} head={head}", flush=True)
        fed.shutdown()
        ray.shutdown()
    finally:
        if nodes is not None:
            nodes.shutdown()


if __name__ == "__main__":
    main()
