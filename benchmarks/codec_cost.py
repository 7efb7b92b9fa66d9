"""Encode + decode cost of fed's codec against the pickle path it replaced, in the same run.

    python benchmarks/codec_cost.py [--repeats 5]

For each value, the best of ``--repeats`` timings of a loop of encode + decode (enough rounds for
about 0.2 s), per value, for: fed's codec (``fed._serialization.codec``, the default policy), and
the path fed used before — pickle protocol 5 with out-of-band buffers, unpickled by a C
unpickler whose ``find_class`` checks an allow-list (kept here for the comparison). Prints
microseconds per round trip and the ratio fed / pickle.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import io
import pickle
import time

import numpy as np

from fed._serialization import codec
from fed._serialization.policy import Policy

_ALLOWED = {"builtins": {"complex", "set", "frozenset", "bytearray", "slice", "range"},
            "collections": {"OrderedDict", "deque", "Counter"}, "datetime": {"datetime", "date", "timedelta"},
            "numpy": {"dtype", "ndarray", "float32", "float64", "int64"},
            "numpy.core.multiarray": {"_reconstruct", "scalar"}, "numpy._core.multiarray": {"_reconstruct", "scalar"},
            "numpy.core.numeric": {"_frombuffer"}, "numpy._core.numeric": {"_frombuffer"}}


class _AllowList(pickle.Unpickler):
    def find_class(self, module, name):
        if name not in _ALLOWED.get(module, ()):
            raise pickle.UnpicklingError(f"{module}.{name}")
        return super().find_class(module, name)


def pickle_path(value):
    buffers = []
    head = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    return _AllowList(io.BytesIO(head), buffers=[b.raw() for b in buffers]).load()


POLICY = Policy()


def fed_path(value):
    encoded = codec.encode(value)
    return codec.decode(encoded.segments, POLICY, encoded.copied)


VALUES = {
    "int": 5,
    "str (20 chars)": "hello federated world",
    "tuple (3)": (1, "a", 2.0),
    "dict of 10 floats": {f"k{i}": float(i) for i in range(10)},
    "list of 3 arrays (10 floats)": [np.ones(10) for _ in range(3)],
    "state dict (20 arrays 16x16 f32)": {f"layer{i}.weight": np.ones((16, 16), np.float32) for i in range(20)},
    "nested record": {"id": 7, "when": datetime.datetime(2026, 12, 1), "tags": ["a", "b"],
                      "stats": collections.OrderedDict(mean=0.5, n=10)},
    "array 1 MB f64": np.ones(125_000),
    "list of 100k floats": [float(i) for i in range(100_000)],
    "list of 100k (int, str)": [(i, str(i)) for i in range(100_000)],
}


def best(fn, value, repeats: int) -> float:
    start = time.perf_counter()
    fn(value)
    once = max(time.perf_counter() - start, 1e-7)
    rounds = max(1, int(0.2 / once))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            fn(value)
        times.append((time.perf_counter() - start) / rounds)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'value':34s} {'fed us':>10s} {'pickle us':>10s} {'fed/pickle':>10s}")
    for name, value in VALUES.items():
        fed = best(fed_path, value, args.repeats)
        old = best(pickle_path, value, args.repeats)
        print(f"{name:34s} {fed * 1e6:10.1f} {old * 1e6:10.1f} {fed / old:10.2f}")


if __name__ == "__main__":
    main()
