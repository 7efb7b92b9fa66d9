"""Transfers through a fault-injecting proxy between real parties."""

from __future__ import annotations

import json
import re

from faultproxy import FaultProxy
from harness import addresses, assert_ok, run_script


def test_a_slow_producer_and_a_cut_mid_transfer_still_deliver_every_value_once_intact(tmp_path):
    real = addresses("alice", "bob")
    with FaultProxy(real["bob"]) as proxy:
        proxy.cut_after(50_000_000)  # the first of alice's connections to bob to carry 50 MB dies
        cluster = {"alice": {"address": real["alice"]},
                   "bob": {"address": proxy.address, "listen_addr": real["bob"]}}

        parties = run_script("transfer_faults.py", real, json.dumps(cluster), str(tmp_path), timeout=240)

        assert_ok(parties)
        assert proxy.cuts == 1 and proxy.connections >= 2, (proxy.cuts, proxy.connections)
    alice, bob = parties["alice"].output, parties["bob"].output
    for out, name in ((alice, "alice"), (bob, "bob")):
        assert f"{name} SLOW worth the wait" in out  # 6 s of work, timeout_in_ms 3 s: still waited for
    expected = re.search(r"alice EXPECTED (\w+)", alice).group(1)
    assert f"bob DIGEST {expected}" in bob and f"alice DIGEST {expected}" in alice
    # bob took each of alice's values once: the slow one, the 200 MB one, the expected digest.
    counts = json.loads(re.search(r"bob COUNTS (.*)", bob).group(1))
    assert counts["values"] == 3 and counts["duplicates"] == 0 and counts["buffered_bytes"] == 0, counts
