"""Per-round time of an all-to-all job as the number of parties grows (multi-controller).

    python benchmarks/all_to_all.py [--parties 2,4,6] [--rounds 10]

Runs ``tests/integration/scripts/all_to_all.py`` with N real parties (each its own process and
Ray): every round each party makes a small value, every party sums the others' values (N*(N-1)
pushes) and every party gets every sum (N*(N-1) more). Prints, per N, the median round (the
first round, which warms up workers and connections, left out), the pushes per round, the time per
push, and the round time as a multiple of the 2-party round measured in the same run.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import addresses, assert_ok, run_script  # noqa: E402


def rounds(n: int, count: int) -> list[float]:
    names = [f"p{i}" for i in range(1, n + 1)]
    with tempfile.TemporaryDirectory() as marks:
        parties = run_script("all_to_all.py", addresses(*names), str(count), marks, timeout=900)
    assert_ok(parties)
    out = parties[names[0]].output
    return [float(t) for t in re.findall(rf"{names[0]} ROUND \d+ ([\d.]+)", out)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", default="2,4,6")
    parser.add_argument("--rounds", type=int, default=10)
    opts = parser.parse_args()
    base = None
    print(f"{'parties':>8}{'round ms (median)':>20}{'pushes/round':>14}{'ms/push':>10}{'x 2-party':>11}")
    for n in (int(x) for x in opts.parties.split(",")):
        times = rounds(n, opts.rounds)[1:]
        median = statistics.median(times) * 1000
        pushes = 2 * n * (n - 1)
        base = base or median
        print(f"{n:>8}{median:>20.1f}{pushes:>14}{median / pushes:>10.2f}{median / base:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
