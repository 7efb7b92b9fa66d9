"""How long a waiting party takes to learn that its peer stopped, per way of stopping.

    python benchmarks/failure_detection.py [--runs 1] [--modes killed,raises,...]

Runs ``tests/integration/scripts/failures.py`` (two real parties, each its own Ray): alice waits
for a value from bob, and bob stops in one of several ways. Prints, per mode, the seconds from
bob's stop to alice's error, and the error. Default configuration except where the script says
(liveness pings slowed to 60 s for the modes that a goodbye must catch).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from harness import addresses, run_script  # noqa: E402

MODES = ["killed", "killed_mid_transfer", "frozen", "raises", "interrupted", "shutdown_in_except", "finished",
         "other_function", "other_party"]


def detect(mode: str) -> tuple[float, str]:
    parties = run_script("failures.py", addresses("alice", "bob"), mode, timeout=180,
                         wait_for=["alice"] if mode == "frozen" else None)  # a frozen bob never exits
    stopped = re.search(r"bob STOPPING at ([\d.]+)", parties["bob"].output)
    raised = re.search(r"alice RAISED at ([\d.]+) (\w+)", parties["alice"].output)
    if not (stopped and raised):
        raise SystemExit(f"{mode}: no detection\n" + "\n".join(
            f"----- {name} (exit {p.returncode})\n{p.output[-3000:]}" for name, p in parties.items()))
    return float(raised.group(1)) - float(stopped.group(1)), raised.group(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--modes", default=",".join(MODES))
    opts = parser.parse_args()
    print(f"{'how bob stops':<22}{'seconds until alice raises':>28}   error")
    for mode in opts.modes.split(","):
        results = [detect(mode) for _ in range(opts.runs)]
        times = [t for t, _ in results]
        median = statistics.median(times)
        print(f"{mode:<22}{median:>14.2f} (max {max(times):.2f}){'':>4}   {results[0][1]}", flush=True)


if __name__ == "__main__":
    main()
