"""Mutual TLS with one certificate that names no party (``server``), shared by both parties, as
RayFed's docs generate.

    tls_names.py PARTY ADDRESSES_JSON CERTS_DIR MODE

``plain``: fed.init must fail within seconds, saying which names the certificate carries.
``mapped``: tls_config['party_cert_names'] says both parties' certificate is ``server``; the job runs.
"""

from __future__ import annotations

import os
import time

import ray
from common import add, args, cluster, make

import fed


def main() -> None:
    party, addrs, (certs, mode) = args()
    tls = {"ca_cert": os.path.join(certs, "ca.crt"), "cert": os.path.join(certs, "server.crt"),
           "key": os.path.join(certs, "server.key")}
    if mode == "mapped":
        tls["party_cert_names"] = {"alice": "server", "bob": "server"}
    ray.init(address="local", include_dashboard=False)
    started = time.monotonic()
    try:
        fed.init(cluster=cluster(addrs), party=party, tls_config=tls,
                 config={"cross_silo_comm": {"timeout_in_ms": 20_000}})
    except fed.FedSendError as exc:
        print(f"{party} INIT FAILED after {time.monotonic() - started:.1f} s: {exc}", flush=True)
        return
    print(f"{party} RESULT {fed.get(add.party('bob').remote(make.party('alice').remote(2), 3))}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
