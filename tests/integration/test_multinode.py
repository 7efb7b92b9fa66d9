"""A party that is a multi-node Ray cluster (ray.cluster_utils.Cluster) works with a one-node party."""

from __future__ import annotations

from harness import addresses, assert_ok, run_script


def test_a_party_spanning_nodes_places_work_by_resources_and_proxies_on_the_gateway(tmp_path):
    parties = run_script("multinode.py", addresses("alice", "bob"), str(tmp_path), timeout=240)

    assert_ok(parties)
    for name in ("alice", "bob"):
        assert f"{name} RESULT [0, 10, 20, 30] 60 60" in parties[name].output, parties[name].output
    assert "alice PLACED OK" in parties["alice"].output, parties["alice"].output


def test_a_proxy_label_no_node_has_is_a_clear_error_at_init():
    parties = run_script("unplaceable.py", addresses("alice", "bob"), parties=["alice"], timeout=120)

    out = parties["alice"].output
    assert parties["alice"].returncode == 0, out
    assert "alice INIT FAILED" in out and "fed's receiver actor did not start within 3000 ms: it asks Ray " \
        "for {'gateway': 1}, and no node has that free" in out, out
