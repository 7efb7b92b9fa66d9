"""fed.stats() and Ray's metrics endpoint count what real parties sent each other."""

from __future__ import annotations

import json
import re

import pytest
from harness import addresses, assert_ok, run_script


def test_stats_and_ray_metrics_match_what_was_sent():
    parties = run_script("stats.py", addresses("alice", "bob"))

    assert_ok(parties)
    stats = {p: json.loads(re.search(rf"{p} STATS (.*)", parties[p].output).group(1)) for p in ("alice", "bob")}
    to_bob, to_alice = stats["alice"]["peers"]["bob"], stats["bob"]["peers"]["alice"]
    # 20 small values and 2 MB went alice -> bob, the sum bob -> alice: both sides agree.
    assert to_bob["sent_values"] == to_alice["received_values"] == 21
    assert to_bob["sent_bytes"] == to_alice["received_bytes"] > 2_000_000
    assert to_alice["sent_values"] == to_bob["received_values"] == 1
    assert to_alice["sent_bytes"] == to_bob["received_bytes"] > 0
    for row in (to_bob, to_alice):
        assert row["retries"] == row["refusals"] == row["failures"] == row["duplicates"] == 0, row
        assert 0 < row["push_seconds_mean"] <= row["push_seconds_max"] < 30, row
        assert row["sent_mb_per_s"] > 0, row
    for party in ("alice", "bob"):
        total = stats[party]["total"]
        waiting = stats[party]["waiting"]
        assert total["refused"] == 0 and (waiting["values"], waiting["bytes"]) == (0, 0), stats[party]
        assert waiting["peak_bytes"] >= (2_000_000 if party == "bob" else 1), waiting
    if "alice METRIC unavailable" in parties["alice"].output:
        pytest.skip("Ray's Prometheus endpoint needs ray[default] (pip install -e '.[metrics]')")
    metric = re.search(r"alice METRIC (.*)", parties["alice"].output).group(1)
    assert 'job="default"' in metric and 'party="alice"' in metric and metric.endswith(" 21.0"), metric
