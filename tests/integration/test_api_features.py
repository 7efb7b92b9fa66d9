"""The API across two real parties: nesting, kwargs, num_returns, actors, kill, push-once."""

from __future__ import annotations

from harness import addresses, assert_ok, run_script


def test_api_features_across_two_parties():
    parties = run_script("api_features.py", addresses("alice", "bob"))

    assert_ok(parties)
    assert "alice FEATURES OK" in parties["alice"].output
    assert "bob FEATURES OK" in parties["bob"].output
