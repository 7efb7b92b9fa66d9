"""Every type fed's codec carries crosses between parties unchanged, as ``fed.get`` returns it.

    carried_types.py PARTY ADDRESSES_JSON

alice makes one value of each type (tests/unit/codec_values.py); bob's task checks what it
received (as Ray hands it over: a top-level bytearray is bytes, Ray's own rule), and ``fed.get``
of each value is checked where it crossed: at bob across real parties, and in single-controller
mode (``fed run --single``), where ``fed.get`` returns a value as another party would receive
it. Prints ``PARTY TYPES N BAD [names]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from common import args, cluster

import fed

UNIT = str(Path(__file__).resolve().parents[2] / "unit")
sys.path.insert(0, UNIT)
os.environ["PYTHONPATH"] = os.pathsep.join([UNIT, os.environ.get("PYTHONPATH", "")])  # for Ray's workers
from codec_values import ARRAYS, SCALARS, VALUES, same  # noqa: E402

ALL = {**VALUES, **{f"array_{k}": v for k, v in ARRAYS.items()}, **{f"scalar_{i}": s for i, s in enumerate(SCALARS)}}


def matches(got, expected) -> bool:
    if type(expected) in (bytearray, np.bytes_):
        # Ray itself returns a task's or actor's top-level bytearray (or numpy bytes) as bytes, at the
        # owner too (ray.get of a task returning bytearray(b"x") is b"x"); nested ones stay as they are.
        expected = bytes(expected)
    if isinstance(expected, np.ndarray):
        return (type(got) is np.ndarray and got.dtype == expected.dtype and got.shape == expected.shape
                and got.tobytes() == expected.tobytes())
    if isinstance(expected, np.generic):
        return type(got) is type(expected) and got == expected
    return same(got, expected)


@fed.remote
def produce(name):
    return ALL[name]


@fed.remote
def check(value, name):
    return matches(value, ALL[name])


def main() -> None:
    party, addrs, _ = args()
    fed.init(address="local", cluster=cluster(addrs), party=party)
    single = os.environ.get("FED_SINGLE_CONTROLLER", "") not in ("", "0")
    names = sorted(ALL)
    values = [produce.party("alice").remote(name) for name in names]
    checks = fed.get([check.party("bob").remote(value, name) for value, name in zip(values, names)])
    got = fed.get(values)
    bad = [name for name, ok in zip(names, checks) if not ok]
    if single or party != "alice":  # there fed.get returned the value as it crossed
        bad += [name for name, value in zip(names, got) if not matches(value, ALL[name])]
    print(f"{party} TYPES {len(names)} BAD {sorted(set(bad))}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
