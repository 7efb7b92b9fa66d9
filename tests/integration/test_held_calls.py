"""Calls held in the driver until their values from a peer arrive, across two real parties."""

from __future__ import annotations

from harness import addresses, assert_ok, run_script


def test_calls_waiting_for_a_peers_values_keep_their_order_results_and_errors():
    parties = run_script("held_calls.py", addresses("alice", "bob"), timeout=180)

    assert_ok(parties)
    assert "alice HELD OK" in parties["alice"].output and "bob HELD OK" in parties["bob"].output
