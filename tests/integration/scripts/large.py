"""Large and many values alice -> bob: a >2 GiB array, a dict of arrays, many small values at once."""

from __future__ import annotations

import sys

import numpy as np
from common import args, cluster

import fed

GiB = 2**30


@fed.remote
def make_array(n):
    """A pattern for small sizes; for huge ones a constant (cheap to make) with a marked last byte."""
    a = (np.arange(n) % 251).astype(np.uint8) if n < 2**24 else np.full(n, 5, dtype=np.uint8)
    if n:
        a[-1] = 255
    return a


@fed.remote
def make_dict():
    return {f"w{i}": np.full((1000, 2500 + i), i, dtype=np.float64) for i in range(4)}


@fed.remote
def check_array(a, n):
    if a.shape != (n,) or a.dtype != np.uint8:
        return False
    if n == 0:
        return True
    expected = (np.arange(n - 1) % 251).astype(np.uint8) if n < 2**24 else None
    body = a[:-1]
    return int(a[-1]) == 255 and (bool((body == 5).all()) if expected is None else bool((body == expected).all()))


@fed.remote
def check_dict(d):
    return sorted(d) == ["w0", "w1", "w2", "w3"] and all(
        d[f"w{i}"].shape == (1000, 2500 + i) and float(d[f"w{i}"].mean()) == i for i in range(4))


@fed.remote
def ident(i):
    return i


@fed.remote
def total(values):
    import ray

    return sum(ray.get(values))


def main() -> None:
    party, addrs, rest = args()
    fed.init(address="local", cluster=cluster(addrs), party=party)
    chunk = 4 * 2**20  # the default chunk_size_in_bytes
    sizes = [int(s) for s in rest] if rest else [0, 1, chunk - 1, chunk, chunk + 1, int(2.3 * GiB)]
    for n in sizes:
        ok = fed.get(check_array.party("bob").remote(make_array.party("alice").remote(n), n))
        print(f"{party} ARRAY {n} {ok}", flush=True)
        if not ok:
            sys.exit(1)
    assert fed.get(check_dict.party("bob").remote(make_dict.party("alice").remote()))
    small = [ident.party("alice").remote(i) for i in range(300)]
    assert fed.get(total.party("bob").remote(small)) == sum(range(300))
    fed.shutdown()
    print(f"{party} LARGE OK", flush=True)


if __name__ == "__main__":
    main()
