"""Many parties simulated in one process (single-controller mode) against the same tasks in plain Ray.

    python benchmarks/simulation.py [--parties 50,200,1000,5000] [--rounds 3] [--repeats 3]

fed: ``tests/integration/scripts/many_parties.py N`` — every round each of N parties updates a
model of 1000 floats and p001 averages the N updates (each update crosses from its party to p001,
the model from p001 to every party, through fed's codec and limits). Plain Ray: the same N update
tasks and the average in one Ray, no parties. Prints seconds per round (the median of the rounds
after the first), the ratio, and the peak RSS of each run's processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from children import ROOT, print_result, run_children

SCRIPT = __file__
MANY = ROOT / "tests" / "integration" / "scripts" / "many_parties.py"


def run_plain(parties: int, rounds: int) -> None:
    import numpy as np
    import ray

    sys.path.insert(0, str(MANY.parent))
    from many_parties import rss_mb

    ray.init(address="local", include_dashboard=False)

    @ray.remote
    def remote_update(model, seed):  # many_parties.update (defined here: workers cannot import that script)
        rng = np.random.default_rng(seed)
        return model * 0.5 + rng.standard_normal(model.shape)

    @ray.remote
    def average(*updates):
        return np.mean(updates, axis=0)

    model = ray.put(np.zeros(1000))
    times = []
    for _ in range(rounds):
        started = time.monotonic()
        model = average.remote(*[remote_update.remote(model, i) for i in range(parties)])
        ray.get(model)
        times.append(time.monotonic() - started)
    print_result(rounds=times, rss=rss_mb())
    ray.shutdown()


def run_fed(parties: int, rounds: int) -> None:
    import subprocess

    out = subprocess.run([sys.executable, str(MANY), str(parties), "--rounds", str(rounds)], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    times = [float(line.split()[2]) for line in out.splitlines() if line.startswith("ROUND ")]
    rss = [float(line.split()[1]) for line in out.splitlines() if line.startswith("PEAK_RSS_MB ")]
    print_result(rounds=times, rss=rss[0] if rss else None)


def steady(times: list[float]) -> float:
    return statistics.median(times[1:] if len(times) > 1 else times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", default="50,200,1000,5000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "plain":
        return run_plain(args.n, args.rounds)
    if args.mode == "fed":
        return run_fed(args.n, args.rounds)
    print(f"{'parties':>8} {'fed s/round':>12} {'plain s/round':>14} {'fed/plain':>10} {'fed RSS MB':>11} "
          f"{'plain RSS MB':>13}")
    for n in (int(p) for p in args.parties.split(",")):
        for _ in range(args.repeats):
            common = ["--n", str(n), "--rounds", str(args.rounds)]
            fed_r = run_children(SCRIPT, {"fed": ["--mode", "fed", *common]}, timeout=3600)["fed"]
            plain = run_children(SCRIPT, {"plain": ["--mode", "plain", *common]}, timeout=3600)["plain"]
            f, p = steady(fed_r["rounds"]), steady(plain["rounds"])
            print(f"{n:>8} {f:>12.3f} {p:>14.3f} {f / p:>9.1f}x {fed_r['rss'] or 0:>11.0f} {plain['rss']:>13.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
