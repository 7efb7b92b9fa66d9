"""Per-round overhead of fed versus plain Ray on tiny actor tasks.

    python benchmarks/tiny_tasks.py [--rounds N] [--warmup W] [--repeats R]

One round is ``get(agg.aggr.remote(a.run.remote(), b.run.remote()))`` with ``a`` and ``agg`` at
alice and ``b`` at bob. ``run`` and ``aggr`` return None, so a round costs only control: Ray
calls, the proxy actors, gRPC pushes.

* fed: alice and bob are two processes (this file re-invoked with ``--party``), each with its own
  Ray (``address='local'``), talking gRPC over loopback; each times its own loop.
* plain Ray: the same loop with the three actors in one Ray (``address='local'``), in a child.

Plain Ray runs before and after every fed run (R fed runs, R + 1 plain runs) and the table shows
medians, because the machine is noisy. Every child leads its own session; everything in that
session (its Ray daemons and workers too) is killed when it is done, whatever happened.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import children

from fed._cli.sessions import kill_session as kill_leader_session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import free_ports  # noqa: E402  (ports no Ray daemon or kernel bind(0) can take)

ROOT = Path(__file__).resolve().parents[1]
RESULT = "RESULT "
TIMEOUT_S = 900.0


class Worker:
    def run(self) -> None:
        return None


class Aggregator:
    def aggr(self, x: Any, y: Any) -> None:
        return None


# ---- child modes: each prints one RESULT line ----

def timed_rounds(one_round: Callable[[], Any], warmup: int, rounds: int) -> float:
    """Milliseconds per round after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        one_round()
    start = time.perf_counter()
    for _ in range(rounds):
        one_round()
    return (time.perf_counter() - start) * 1000 / rounds


def print_result(ms: float) -> None:
    print(RESULT + json.dumps({"ms": ms}), flush=True)


def run_plain(warmup: int, rounds: int) -> None:
    """The loop on one Ray with three actors."""
    import ray

    ray.init(address="local", include_dashboard=False)
    a, b = ray.remote(Worker).remote(), ray.remote(Worker).remote()
    agg = ray.remote(Aggregator).remote()
    print_result(timed_rounds(lambda: ray.get(agg.aggr.remote(a.run.remote(), b.run.remote())), warmup, rounds))
    ray.shutdown()


def run_party(party: str, addresses: dict[str, str], warmup: int, rounds: int) -> None:
    """One fed party running the loop (alice and bob run this same code)."""
    import ray

    import fed

    ray.init(address="local", include_dashboard=False)
    fed.init(addresses=addresses, party=party, logging_level="warning")
    a = fed.remote(Worker).party("alice").remote()
    b = fed.remote(Worker).party("bob").remote()
    agg = fed.remote(Aggregator).party("alice").remote()
    print_result(timed_rounds(lambda: fed.get(agg.aggr.remote(a.run.remote(), b.run.remote())), warmup, rounds))
    fed.shutdown()
    ray.shutdown()


# ---- the parent: start children, collect their numbers, clean up ----

def spawn(args: list[str], log: IO[str]) -> subprocess.Popen:
    """This file as a child that leads a new session (its Ray daemons and workers stay in it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, __file__, *args], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, cwd=ROOT, start_new_session=True)


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL everything in the child's session (its Ray daemons and workers too)."""
    kill_leader_session(proc.pid)
    proc.wait()


def run_children(named_args: dict[str, list[str]]) -> dict[str, float]:
    """Run the children at once and return each one's ms per round; kill them in any case."""
    return {name: result["ms"] for name, result in children.run_children(__file__, named_args, TIMEOUT_S).items()}


def measure(warmup: int, rounds: int, repeats: int) -> dict[str, list[float]]:
    """Plain Ray, then ``repeats`` times (fed, plain Ray); every run's ms per round."""
    counts = ["--warmup", str(warmup), "--rounds", str(rounds)]
    runs: dict[str, list[float]] = {"plain": [], "alice": [], "bob": []}

    def plain() -> None:
        runs["plain"].append(run_children({"plain": ["--plain", *counts]})["plain"])
        print(f"  plain Ray: {runs['plain'][-1]:.3f} ms/round", flush=True)

    plain()
    for _ in range(repeats):
        addresses = json.dumps({p: f"127.0.0.1:{port}" for p, port in zip(("alice", "bob"), free_ports(2))})
        fed_ms = run_children({p: ["--party", p, "--addresses", addresses, *counts] for p in ("alice", "bob")})
        for party, ms in fed_ms.items():
            runs[party].append(ms)
        print(f"  fed: alice {fed_ms['alice']:.3f}, bob {fed_ms['bob']:.3f} ms/round", flush=True)
        plain()
    return runs


def report(runs: dict[str, list[float]], rounds: int) -> None:
    median = {name: statistics.median(values) for name, values in runs.items()}
    print(f"\n{rounds} timed rounds per run; medians of {len(runs['plain'])} plain Ray "
          f"and {len(runs['alice'])} fed run(s)")
    print(f"{'':<11}{'ms/round':>10}{'fed/plain':>11}   every run")
    for name, label in (("plain", "plain Ray"), ("alice", "fed alice"), ("bob", "fed bob")):
        ratio = median[name] / median["plain"]
        print(f"{label:<11}{median[name]:>10.3f}{ratio:>10.1f}x   " + " ".join(f"{v:.3f}" for v in runs[name]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=500, help="timed rounds per run (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed rounds first (default 50)")
    parser.add_argument("--repeats", type=int, default=1, help="fed runs, each followed by plain Ray (default 1)")
    parser.add_argument("--party", help=argparse.SUPPRESS)
    parser.add_argument("--addresses", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.party:
        run_party(args.party, json.loads(args.addresses), args.warmup, args.rounds)
    elif args.plain:
        run_plain(args.warmup, args.rounds)
    else:
        report(measure(args.warmup, args.rounds, args.repeats), args.rounds)


if __name__ == "__main__":
    main()
