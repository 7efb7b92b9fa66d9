"""Shared by the party scripts: argv parsing and small remote functions."""

from __future__ import annotations

import json
import sys

import numpy as np

import fed


def args() -> tuple[str, dict[str, str], list[str]]:
    """``script PARTY ADDRESSES_JSON *rest`` → (party, addresses, rest)."""
    return sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]


def cluster(addresses: dict[str, str]) -> dict[str, dict[str, str]]:
    return {p: {"address": a} for p, a in addresses.items()}


def tls_files(certs: str, name: str) -> dict[str, str]:
    """The tls_config of party ``name`` in a folder ``fed certs`` made."""
    import os

    return {"ca_cert": os.path.join(certs, "ca.crt"), "cert": os.path.join(certs, f"{name}.crt"),
            "key": os.path.join(certs, f"{name}.key")}


def wait_for(path: str, timeout: float = 120) -> None:
    """Wait until ``path`` exists (another party's mark); exit if it does not come in ``timeout`` s."""
    import os
    import time

    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {path}")
        time.sleep(0.05)


def receiver_counts() -> dict[str, int]:
    """How many pushes this party's receiver took, and how many were duplicates."""

    from fed._runtime import context

    return context.current().receiver.counts().result(10)


@fed.remote
def make(x):
    return x


@fed.remote
def add(a, b):
    return a + b


@fed.remote
def total(w):
    """The sum of a ``perimeter_types.Weights``."""
    return sum(w.values)


@fed.remote
def ones(n):
    return np.ones(n, dtype=np.uint8)


@fed.remote
def nbytes(a):
    return a.nbytes


def meet(marks: str, party: str, parties) -> None:
    """A file rendezvous in folder ``marks``: this party's mark, then every party's (each started Ray)."""
    import os

    open(os.path.join(marks, party), "a").close()
    for other in parties:
        wait_for(os.path.join(marks, other))


def received_from(peer: str) -> tuple[dict, dict]:
    """This party's receiver's stats: what it took from ``peer``, and all of them."""
    from fed._runtime import context

    stats = context.current().receiver.stats().result(10)
    return stats["peers"].get(peer, {}), stats
