"""Many parties in single-controller mode: every party updates a shared model, one averages.

    python many_parties.py N_PARTIES [--rounds 3] [--actors] [--size 1000]

Parties p001..pN each hold a seed; every round each party's task (or, with ``--actors``, its
actor) computes an update of ``size`` floats from the global model, and p001 averages them. Prints
the seconds per round and ``RESULT <checksum> EXPECTED <checksum>`` (the same computed here with
plain numpy), then ``PEAK_RSS_MB`` of every process of this job's Ray.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import ray

import fed


def update(model: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return model * 0.5 + rng.standard_normal(model.shape)


@fed.remote
def local_update(model, seed):
    return update(model, seed)


@fed.remote
class Client:
    def __init__(self, seed):
        self.seed = seed

    def update(self, model):
        return update(model, self.seed)


@fed.remote
def average(*updates):
    return np.mean(updates, axis=0)


def rss_mb() -> float:
    """Resident memory of this process and every Ray process of this session, in MB."""
    total = 0
    session = os.getsid(0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            if int(fields[3]) == session:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("parties", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--actors", action="store_true")
    opts = parser.parse_args()
    parties = [f"p{i:03d}" for i in range(1, opts.parties + 1)]
    # Nothing listens in single-controller mode: the addresses are only names.
    cluster = {p: {"address": f"127.0.0.1:{20000 + i}"} for i, p in enumerate(parties)}
    started = time.monotonic()
    fed.init(address="local", cluster=cluster, party=parties[0], single_controller=True)
    print(f"INIT {time.monotonic() - started:.2f} s", flush=True)
    clients = {p: Client.party(p).remote(i) for i, p in enumerate(parties)} if opts.actors else {}
    model = np.zeros(opts.size)
    expected = np.zeros(opts.size)
    for r in range(opts.rounds):
        started = time.monotonic()
        if opts.actors:
            updates = [clients[p].update.remote(model) for p in parties]
        else:
            updates = [local_update.party(p).remote(model, i) for i, p in enumerate(parties)]
        model = average.party(parties[0]).remote(*updates)
        fed.get(model)
        print(f"ROUND {r + 1} {time.monotonic() - started:.3f} s", flush=True)
        expected = np.mean([update(expected, i) for i in range(len(parties))], axis=0)
    result = fed.get(model)
    print(f"RESULT {result.sum():.6f} EXPECTED {expected.sum():.6f}", flush=True)
    print(f"PEAK_RSS_MB {rss_mb():.0f}", flush=True)
    assert np.allclose(result, expected), (result.sum(), expected.sum())
    fed.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
