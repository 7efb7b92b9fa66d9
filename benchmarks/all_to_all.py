"""Per-round time of an all-to-all job as the number of parties grows, and where the CPU goes.

    python benchmarks/all_to_all.py [--parties 2,4,6] [--rounds 20]

Runs ``tests/integration/scripts/all_to_all.py`` with N real parties (each its own process and
Ray): every round each party makes a small value, every party sums the others' values (N*(N-1)
pushes) and every party gets every sum (N*(N-1) more). Prints, per N, the median round (the
first round, which warms up workers and connections, left out), the pushes per round, the time per
push, and the round time as a multiple of the 2-party round measured in the same run.

Where the cost goes: while the parties run, every process of their sessions (driver, receiver
actor, Ray workers, raylet, GCS, Ray's other daemons and agents) is sampled for CPU time; the CPU spent
between the end of round 1 and the end of the last round is split by kind of process and given
per round, summed over the parties. Needs psutil (``pip install psutil``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import SCRIPTS, addresses, assert_ok, kill, start, wait_all  # noqa: E402

KINDS = ("driver", "receiver", "workers", "raylet", "gcs", "other")


def kind_of(proc: psutil.Process, drivers: set[int]) -> str:
    """What a process of a party is; a Ray worker names itself ``ray::<actor or task>`` once it runs."""
    if proc.pid in drivers:
        return "driver"
    argv = proc.cmdline()
    cmd, program = " ".join(argv), os.path.basename(argv[0]) if argv else ""
    if program in ("raylet", "gcs_server"):
        return "gcs" if program == "gcs_server" else "raylet"
    if cmd.startswith("ray::Receiver"):
        return "receiver"
    if cmd.startswith("ray::") and "Agent" not in cmd or "default_worker.py" in cmd:
        return "workers"
    return "other"


class CpuSampler(threading.Thread):
    """Every ``every`` s, the CPU seconds used so far by each kind of process in the given sessions
    (processes that exited keep their last reading)."""

    def __init__(self, sessions: set[int], every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.sessions, self.every = sessions, every
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._last: dict[int, tuple[str, float]] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every):
            for proc in psutil.process_iter():
                try:
                    if os.getsid(proc.pid) not in self.sessions:
                        continue
                    times = proc.cpu_times()
                    kind = kind_of(proc, self.sessions)  # again each time: a worker becomes an actor
                    self._last[proc.pid] = (kind, times.user + times.system)
                except (psutil.Error, ProcessLookupError):
                    continue
            totals = dict.fromkeys(KINDS, 0.0)
            for kind, cpu in self._last.values():
                totals[kind] += cpu
            self.samples.append((time.time(), totals))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def at(self, when: float) -> dict[str, float]:
        """The totals of the first sample at or after ``when``."""
        i = min(bisect_left([t for t, _ in self.samples], when), len(self.samples) - 1)
        return self.samples[i][1]


def run(n: int, count: int) -> tuple[list[tuple[float, float]], dict[str, float]]:
    """Rounds of the first party as (seconds, end time), and CPU seconds per round by kind."""
    names = [f"p{i}" for i in range(1, n + 1)]
    addrs = addresses(*names)
    with tempfile.TemporaryDirectory() as marks:
        parties = []
        try:
            for name in names:
                argv = [sys.executable, str(SCRIPTS / "all_to_all.py"), name, json.dumps(addrs), str(count), marks]
                parties.append(start(name, argv))
            sampler = CpuSampler({p.proc.pid for p in parties})
            sampler.start()
            wait_all(parties, 900)
            sampler.stop()
        finally:
            for party in parties:
                kill(party)
    assert_ok({p.name: p for p in parties})
    out = parties[0].output
    rounds = [(float(s), float(t)) for s, t in re.findall(rf"{names[0]} ROUND \d+ ([\d.]+) ([\d.]+)", out)]
    start_cpu, end_cpu = sampler.at(rounds[0][1]), sampler.at(rounds[-1][1])
    measured = len(rounds) - 1
    return rounds, {k: (end_cpu[k] - start_cpu[k]) / measured for k in KINDS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", default="2,4,6")
    parser.add_argument("--rounds", type=int, default=20)
    opts = parser.parse_args()
    base = None
    print(f"{'parties':>8}{'round ms (median)':>20}{'pushes/round':>14}{'ms/push':>10}{'x 2-party':>11}"
          f"{'CPU ms/round':>14}  CPU by process kind (% of it)")
    for n in (int(x) for x in opts.parties.split(",")):
        rounds, cpu = run(n, opts.rounds)
        median = statistics.median(s for s, _ in rounds[1:]) * 1000
        pushes = 2 * n * (n - 1)
        base = base or median
        total = sum(cpu.values())
        split = "  ".join(f"{k} {100 * v / total:.0f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
        print(f"{n:>8}{median:>20.1f}{pushes:>14}{median / pushes:>10.2f}{median / base:>11.2f}"
              f"{total * 1000:>14.0f}  {split}", flush=True)


if __name__ == "__main__":
    main()
