"""Memory of an idle party: what ``fed.init`` starts, process by process.

    python benchmarks/idle_memory.py [--repeats 3] [--settle 10]

Each run starts one party in a child that leads its own session: ``fed.init(address='local')``
(fed starts Ray itself, as lean as it does), and for comparison the same party after a plain
``ray.init(address='local')`` (Ray's defaults, as fed started it before). After ``--settle``
seconds the child sums, over every process of its session, RSS and PSS (``/proc/PID/smaps_rollup``:
shared pages split between the processes that map them, so PSS adds up), and lists them by name.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from children import free_ports, print_result, run_children

SCRIPT = __file__


def processes() -> list[dict]:
    """Every process of this session: its name, RSS and PSS in MB."""
    found = []
    session = os.getsid(0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            if int(fields[3]) != session:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/smaps_rollup") as f:
                rollup = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split()[-1] == "kB"}
        except (OSError, ValueError, IndexError):
            continue
        name = " ".join(a.decode(errors="replace") for a in argv[:3])[:90]
        found.append({"name": name, "rss": rollup.get("Rss", 0) / 1024, "pss": rollup.get("Pss", 0) / 1024})
    return found


def run_party(mode: str, settle: float) -> None:
    import ray

    import fed

    peer = free_ports(2)
    cluster = {"alice": {"address": f"127.0.0.1:{peer[0]}"}, "bob": {"address": f"127.0.0.1:{peer[1]}"}}
    if mode == "ray-defaults":
        ray.init(address="local")
    fed.init(address="local", cluster=cluster, party="alice", logging_level="warning",
             config={"barrier_on_initializing": False})
    time.sleep(settle)
    found = processes()
    print_result(rss=sum(p["rss"] for p in found), pss=sum(p["pss"] for p in found),
                 processes=sorted(found, key=lambda p: -p["pss"]))
    fed.shutdown()
    if ray.is_initialized():
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        return run_party(args.mode, args.settle)
    runs: dict[str, list[dict]] = {"ray-defaults": [], "fed": []}
    for _ in range(args.repeats):
        for mode in runs:
            result = run_children(SCRIPT, {mode: ["--mode", mode, "--settle", str(args.settle)]})[mode]
            runs[mode].append(result)
            print(f"  {mode:<13} RSS {result['rss']:6.0f} MB  PSS {result['pss']:6.0f} MB "
                  f"({len(result['processes'])} processes)", flush=True)
    median = {mode: statistics.median(r["pss"] for r in results) for mode, results in runs.items()}
    for mode, results in runs.items():
        every = " / ".join(f"{r['pss']:.0f}" for r in results)
        print(f"\n{mode}: PSS {every} MB, median {median[mode]:.0f} MB; the last run by process (PSS MB):")
        for p in results[-1]["processes"]:
            print(f"  {p['pss']:7.1f}  {p['name']}")
    print(f"\nfed / Ray defaults (PSS, medians): {median['fed'] / median['ray-defaults']:.2f}")


if __name__ == "__main__":
    main()
