"""A party that dies, fails or finishes early while another waits for it: the wait ends, promptly and clearly."""

from __future__ import annotations

import re

import pytest
from harness import addresses, run_script

EXPECTED = {
    "killed": r"FedPeerLostError: party 'bob' is lost .*; value 2:0 \(__main__.slow@bob#2\) that party 'alice' "
              r"waits for will not come",
    "frozen": r"FedPeerLostError: party 'bob' is lost \(no answer from 127.0.0.1:\d+ for 5 s\); value 2:0 "
              r"\(__main__.slow@bob#2\) that party 'alice' waits for will not come",
    "killed_mid_transfer": r"FedPeerLostError: party 'bob' is lost .*; value 2:0 \(__main__.big@bob#2\) that party "
                           r"'alice' waits for will not come",
    "raises": r"FedRemoteError: ValueError raised at party 'bob': its program stopped before sending value 2:0 "
              r"\(__main__.slow@bob#2\)",
    "shutdown_in_except": r"FedRemoteError: ValueError raised at party 'bob': its program stopped before sending",
    "interrupted": r"FedRemoteError: KeyboardInterrupt raised at party 'bob': its program stopped before sending",
    "finished": r"FedDivergenceError: party 'bob' finished its program without sending value 2:0 "
                r"\(__main__.slow@bob#2\)",
    "other_function": r"FedDivergenceError: party 'bob' sent value 2:0 for call '__main__.fast@bob#2', but this "
                      r"party's program made call '__main__.slow@bob#2' there",
    # Whichever party finds it first tells the other: the parties' order in the message may vary.
    "other_party": r"FedDivergenceError: the programs of parties '\w+' and '\w+' diverged at call 2: "
                   r"(?=.*'alice' made __main__.slow@bob#2)(?=.*'bob' made __main__.slow@alice#2)",
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_a_waiting_party_learns_within_seconds_that_its_peer_stopped(mode):
    # A frozen bob never exits: the harness kills him once alice is done.
    parties = run_script("failures.py", addresses("alice", "bob"), mode, timeout=120,
                         wait_for=["alice"] if mode == "frozen" else None)

    alice, bob = parties["alice"].output, parties["bob"].output
    assert parties["alice"].returncode == 0, alice
    stopped = float(re.search(r"bob STOPPING at ([\d.]+)", bob).group(1))
    raised = re.search(r"alice RAISED at ([\d.]+) (.*)", alice)
    assert raised, alice
    assert re.search(EXPECTED[mode], raised.group(2)), raised.group(2)
    # Within 10 s; a goodbye takes well under 5 s (liveness pings were slowed to 60 s there).
    by_goodbye = mode in ("raises", "interrupted", "shutdown_in_except", "finished", "other_function")
    assert float(raised.group(1)) - stopped < (5 if by_goodbye else 10), alice
    if mode == "killed_mid_transfer":  # what arrived of the broken push is not held
        assert "'buffered_bytes': 0" in alice, alice
    if mode == "other_party":  # both learn it
        assert re.search(r"bob RAISED FedDivergenceError: the programs of parties '\w+' and '\w+' diverged at "
                         r"call 2: .*that party 'bob' waits for", bob), bob


def test_a_peer_that_never_starts_is_a_clear_error_after_the_startup_wait():
    parties = run_script("never_started.py", addresses("alice", "bob"), parties=["alice"], timeout=120)

    out = parties["alice"].output
    assert parties["alice"].returncode == 0, out
    failed = re.search(r"alice INIT FAILED after ([\d.]+) s: (.*)", out)
    assert failed, out
    assert "party 'bob' at 127.0.0.1:" in failed.group(2) and "did not answer within 3000 ms" in failed.group(2)
    assert float(failed.group(1)) < 30  # Ray's start plus the 3 s wait
