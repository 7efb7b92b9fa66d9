"""The quick start with knobs: job name, input, TLS, and either fed.init form. Prints RESULT lines."""

from __future__ import annotations

import argparse
import os

import ray
from common import add, args, cluster

import fed


@fed.remote
class MyActor:
    def __init__(self, value):
        self.value = value

    def inc(self, num):
        self.value += num
        return self.value


def main() -> None:
    party, addrs, rest = args()
    parser = argparse.ArgumentParser()
    parser.add_argument("--job", default=None)
    parser.add_argument("--base", type=int, default=1)
    parser.add_argument("--tls", default=None, help="folder made by fed certs")
    parser.add_argument("--form", choices=("cluster", "addresses"), default="cluster")
    opts = parser.parse_args(rest)
    tls = None
    if opts.tls:
        tls = {"ca_cert": os.path.join(opts.tls, "ca.crt"), "cert": os.path.join(opts.tls, f"{party}.crt"),
               "key": os.path.join(opts.tls, f"{party}.key")}
    if opts.form == "cluster":
        fed.init(address="local", cluster=cluster(addrs), party=party, tls_config=tls, job_name=opts.job)
    else:
        ray.init(address="local", include_dashboard=False, resources={"gateway": 2})
        comm = {"timeout_in_ms": 30_000, "messages_max_size_in_bytes": 1 << 20,
                "serializing_allowed_list": {}, "exit_on_sending_failure": False,
                "expose_error_trace": True, "http_header": {"x-fed-test": "1"}, "max_concurrency": 100,
                "send_resource_label": {"gateway": 1}, "recv_resource_label": {"gateway": 1},
                "use_global_proxy": True}
        fed.init(addresses=addrs, party=party, tls_config=tls, job_name=opts.job, logging_level="debug",
                 config={"cross_silo_comm": comm, "barrier_on_initializing": True})

    actor_alice = MyActor.party("alice").remote(opts.base)
    actor_bob = MyActor.party("bob").remote(opts.base)
    total = add.party("bob").remote(actor_alice.inc.remote(1), actor_bob.inc.remote(2))
    print(f"{party} RESULT {opts.job} {fed.get(total)}")
    fed.shutdown()
    if opts.form == "addresses":
        assert ray.is_initialized(), "fed.shutdown stopped a Ray it did not start"
        ray.shutdown()


if __name__ == "__main__":
    main()
