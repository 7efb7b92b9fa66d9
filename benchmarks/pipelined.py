"""Many small values crossing back to back: alice produces, bob consumes, nobody waits in between.

    python benchmarks/pipelined.py [--values 10000] [--repeats 3]

fed: alice's task ``make(i)`` makes a small value (an int) and bob's task ``use(x)`` consumes it,
``values`` times without waiting; then both parties ``fed.get`` the sum of bob's results (so every
value crossed and was consumed). Two parties, each its own process and Ray, gRPC over loopback.
Plain Ray: the same 2 × ``values`` tasks and the sum in one Ray. Each run prints seconds and
values per second; the ratio is fed over the plain Ray runs before and after it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from children import free_ports, print_result, run_children

SCRIPT = __file__


def make(i: int) -> int:
    return i


def use(x: int) -> int:
    return x + 1


def total(*xs: int) -> int:
    return sum(xs)


def run_plain(values: int) -> None:
    import ray

    ray.init(address="local", include_dashboard=False)
    remote_make, remote_use, remote_total = ray.remote(make), ray.remote(use), ray.remote(total)
    ray.get(remote_total.remote(*[remote_use.remote(remote_make.remote(i)) for i in range(50)]))  # warm up
    started = time.perf_counter()
    result = ray.get(remote_total.remote(*[remote_use.remote(remote_make.remote(i)) for i in range(values)]))
    seconds = time.perf_counter() - started
    assert result == values * (values + 1) // 2
    print_result(seconds=seconds)
    ray.shutdown()


def run_party(party: str, addresses: dict[str, str], values: int) -> None:
    import ray

    import fed

    ray.init(address="local", include_dashboard=False)
    fed.init(addresses=addresses, party=party, logging_level="warning")
    fed_make, fed_use, fed_total = fed.remote(make), fed.remote(use), fed.remote(total)
    fed.get(fed_total.party("bob").remote(*[fed_use.party("bob").remote(fed_make.party("alice").remote(i))
                                            for i in range(50)]))  # warm up
    started = time.perf_counter()
    used = [fed_use.party("bob").remote(fed_make.party("alice").remote(i)) for i in range(values)]
    result = fed.get(fed_total.party("bob").remote(*used))
    seconds = time.perf_counter() - started
    assert result == values * (values + 1) // 2, result
    print_result(seconds=seconds)
    fed.shutdown()
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--party", help=argparse.SUPPRESS)
    parser.add_argument("--addresses", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.party:
        return run_party(args.party, json.loads(args.addresses), args.values)
    if args.plain:
        return run_plain(args.values)
    count = ["--values", str(args.values)]
    plain = [run_children(SCRIPT, {"plain": ["--plain", *count]})["plain"]["seconds"]]
    print(f"{args.values} values crossing alice -> bob, each made by a task at alice and used by one at bob")
    print(f"  plain Ray: {plain[-1]:.2f} s ({args.values / plain[-1]:.0f} values/s)", flush=True)
    for _ in range(args.repeats):
        addresses = json.dumps({p: f"127.0.0.1:{port}" for p, port in zip(("alice", "bob"), free_ports(2))})
        fed_s = run_children(SCRIPT, {p: ["--party", p, "--addresses", addresses, *count] for p in ("alice", "bob")})
        seconds = max(r["seconds"] for r in fed_s.values())
        plain.append(run_children(SCRIPT, {"plain": ["--plain", *count]})["plain"]["seconds"])
        ratio = seconds / statistics.mean(plain[-2:])
        print(f"  fed: {seconds:.2f} s ({args.values / seconds:.0f} values/s); plain Ray around it "
              f"{plain[-2]:.2f} / {plain[-1]:.2f} s; fed / plain {ratio:.1f}x", flush=True)


if __name__ == "__main__":
    main()
