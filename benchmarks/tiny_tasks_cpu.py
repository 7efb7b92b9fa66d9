"""Where the CPU of a fed tiny-task round goes: CPU time per process of each party, from /proc.

    python benchmarks/tiny_tasks_cpu.py [--window 15]

Runs the fed parties of ``tiny_tasks.py`` (alice and bob, each its own Ray) and, once they are
well into their timed rounds, reads every process's user+system CPU time at the start and end of a
window. Prints each process's share of one core and its CPU milliseconds per round.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time

import tiny_tasks

TICK = os.sysconf("SC_CLK_TCK")
ROUND_MS_AT_LEAST = 2.0  # rounds run for settle + window at this speed; faster, and nothing is measured (refused)


def cpu_by_process(sessions: dict[int, str]) -> dict[int, tuple[str, str, float]]:
    """{pid: (party, command line, CPU seconds)} for every process in the parties' sessions."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline") as f:
                cmd = f.read().replace("\0", " ").strip()
        except OSError:
            continue
        party = sessions.get(int(fields[3]))  # state ppid pgrp session ...
        if party is not None:
            found[int(pid)] = (party, cmd, (int(fields[11]) + int(fields[12])) / TICK)  # utime stime
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=15.0, help="seconds of rounds measured (default 15)")
    parser.add_argument("--settle", type=float, default=25.0,
                        help="seconds from start until the parties are in their timed rounds (default 25)")
    opts = parser.parse_args()
    rounds = int((opts.settle + opts.window) * 1000 / ROUND_MS_AT_LEAST)
    addresses = json.dumps({p: f"127.0.0.1:{port}" for p, port in zip(("alice", "bob"), tiny_tasks.free_ports(2))})
    procs, logs = {}, {}
    try:
        for party in ("alice", "bob"):
            logs[party] = tempfile.TemporaryFile(mode="w+")
            procs[party] = tiny_tasks.spawn(["--party", party, "--addresses", addresses, "--warmup", "50",
                                             "--rounds", str(rounds)], logs[party])
        sessions = {proc.pid: party for party, proc in procs.items()}
        time.sleep(opts.settle)
        before, t0 = cpu_by_process(sessions), time.monotonic()
        time.sleep(opts.window)
        after, t1 = cpu_by_process(sessions), time.monotonic()
        if any(proc.poll() is not None for proc in procs.values()):
            raise SystemExit(f"a party finished its rounds before the window ended (faster than {ROUND_MS_AT_LEAST} "
                             "ms a round): nothing was measured; shorten --settle and --window")
        for party, proc in procs.items():
            if proc.wait(tiny_tasks.TIMEOUT_S) != 0:
                raise SystemExit(f"{party} failed (exit {proc.returncode})")
            logs[party].seek(0)
            ms = [json.loads(line[len(tiny_tasks.RESULT):])["ms"]
                  for line in logs[party].read().splitlines() if line.startswith(tiny_tasks.RESULT)]
        round_ms = ms[-1]
    finally:
        for proc in procs.values():
            tiny_tasks.kill_session(proc)
    used: dict[tuple[str, str], float] = collections.defaultdict(float)
    for pid, (party, cmd, cpu) in after.items():
        if pid in before:
            used[(party, " ".join(cmd.split()[:2])[:60])] += cpu - before[pid][2]
    wall = t1 - t0
    total = sum(used.values())
    print(f"{round_ms:.2f} ms per round; {total / wall:.2f} of 2 cores busy; "
          f"{total / wall * round_ms:.1f} CPU ms per round in all")
    print(f"{'party':<6} {'% core':>7} {'CPU ms/round':>13}  process")
    for (party, cmd), cpu in sorted(used.items(), key=lambda kv: -kv[1]):
        if cpu / wall >= 0.005:
            print(f"{party:<6} {cpu / wall * 100:>7.1f} {cpu / wall * round_ms:>13.2f}  {cmd}")


if __name__ == "__main__":
    main()
