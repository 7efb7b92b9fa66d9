"""Sizes across real parties: chunk boundaries, a value over 2 GiB, containers of arrays, many at once."""

from __future__ import annotations

from harness import addresses, assert_ok, run_script


def test_sizes_from_zero_bytes_to_over_two_gib_and_many_small_values():
    parties = run_script("large.py", addresses("alice", "bob"), timeout=600)

    assert_ok(parties)
    for name in ("alice", "bob"):
        out = parties[name].output
        assert f"{name} ARRAY {int(2.3 * 2**30)} True" in out
        assert f"{name} ARRAY {4 * 2**20 + 1} True" in out and f"{name} ARRAY 0 True" in out
        assert f"{name} LARGE OK" in out
