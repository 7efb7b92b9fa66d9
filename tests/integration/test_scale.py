"""Scale across real parties: six parties, each sending to every other party every round."""

from __future__ import annotations

import re

from harness import addresses, assert_ok, run_script

PARTIES = [f"p{i}" for i in range(1, 7)]


def test_six_parties_send_to_every_other_party_each_round(tmp_path):
    parties = run_script("all_to_all.py", addresses(*PARTIES), "4", str(tmp_path), timeout=400)

    assert_ok(parties)
    for name in PARTIES:
        out = parties[name].output
        assert f"{name} OK" in out and len(re.findall(rf"{name} ROUND \d ", out)) == 4, out
