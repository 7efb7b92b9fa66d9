"""The API across two real parties: nesting, kwargs, num_returns, actors, kill, push-once."""

from __future__ import annotations

from harness import addresses, assert_ok, run_script


def test_api_features_across_two_parties():
    parties = run_script("api_features.py", addresses("alice", "bob"))

    assert_ok(parties)
    assert "alice FEATURES OK" in parties["alice"].output
    assert "bob FEATURES OK" in parties["bob"].output


def test_an_actor_created_from_values_another_party_owns_gets_them():
    # Without the constructor pushing its arguments, both parties wait for ever: the timeout fails it.
    parties = run_script("actor_args.py", addresses("alice", "bob"), timeout=120)

    assert_ok(parties)
    assert "alice ACTOR ARGS OK" in parties["alice"].output and "bob ACTOR ARGS OK" in parties["bob"].output
