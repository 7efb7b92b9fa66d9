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


def receiver_counts() -> dict[str, int]:
    """How many pushes this party's receiver took, and how many were duplicates."""
    import ray

    from fed._runtime import context

    return ray.get(context.current().receiver.counts.remote())


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
