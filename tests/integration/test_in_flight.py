"""Many values in flight at once between two real parties: back-pressure keeps bob's receiver bounded."""

from __future__ import annotations

import json
import re

from harness import addresses, assert_ok, run_script

SMALL, LARGE, LARGE_MB, CAP_MB = 10_000, 100, 10, 64
MB = 1 << 20


def stats_of(out: str, name: str) -> dict:
    return json.loads(out.split(f"{name} STATS ", 1)[1].splitlines()[0])


def test_ten_thousand_small_and_a_hundred_large_values_in_flight_with_bounded_memory():
    parties = run_script("in_flight.py", addresses("alice", "bob"),
                         str(SMALL), str(LARGE), str(LARGE_MB), str(CAP_MB), timeout=500)

    assert_ok(parties)
    alice, bob = parties["alice"].output, parties["bob"].output
    for out, name in ((alice, "alice"), (bob, "bob")):
        assert f"{name} CHECKED {SMALL // 1000} sums and {LARGE} large values" in out, out[-3000:]
    sent, received = stats_of(alice, "alice"), stats_of(bob, "bob")
    values = SMALL + LARGE
    assert sent["peers"]["bob"]["sent_values"] == values
    assert sent["peers"]["bob"]["failures"] == 0
    assert received["peers"]["alice"]["received_values"] == values
    assert received["peers"]["alice"]["duplicates"] == 0
    # Back-pressure happened: bob refused pushes for lack of room, alice waited and tried again.
    assert received["total"]["refused"] > 0
    assert sent["peers"]["bob"]["retries"] > 0
    assert "wait for room" in alice
    # bob's receiver actor logs at the level bob's fed.init was given (info): it asked alice to wait
    assert re.search(r"asked \S+ to wait: party 'bob' already holds \d+ bytes", bob), bob[-3000:]
    # What bob's receiver held never passed the cap by more than the one value his program
    # waited for (let in beyond the cap so that early values cannot keep it out).
    assert received["waiting"]["peak_bytes"] <= (CAP_MB + LARGE_MB) * MB + MB
    assert received["waiting"]["peak_bytes"] > (CAP_MB - LARGE_MB) * MB  # it did fill up
    assert received["waiting"]["bytes"] == 0
