"""The data perimeter with real parties: no code from peers, the allow-list, the audit log."""

from __future__ import annotations

import json
import subprocess
import sys

from harness import addresses, assert_ok, run_script


def test_a_value_that_would_run_a_command_is_refused_and_the_audit_log_tells_what_left(tmp_path):
    canary = tmp_path / "canary"

    parties = run_script("perimeter.py", addresses("alice", "bob"), str(canary), str(tmp_path))

    assert_ok(parties)
    alice, bob = parties["alice"].output, parties["bob"].output
    for out, name in ((alice, "alice"), (bob, "bob")):
        assert f"{name} ALLOWED CLASS CROSSED" in out
        assert f"{name} CANARY UNTOUCHED" in out
    # bob, where the value arrived, says what was refused and how to allow it; alice is told.
    assert "bob REFUSED" in bob and "posix.system" in bob and "serializing_allowed_list" in bob
    assert "alice REFUSED FedRemoteError" in alice
    # With the unsafe option the same value runs the command: the check above can fail.
    assert "bob UNSAFE GOT '0'" in bob and "bob CANARY MADE" in bob

    # Back-pressure from bob's buffer cap: alice was told to wait, and every value arrived.
    for out, name in ((alice, "alice"), (bob, "bob")):
        assert f"{name} CAPPED [1000000, 1000000, 1000000]" in out
    assert "max_buffered_bytes=1500000" in alice and "wait for room" in alice

    # The audit log: what left each party, in memory and in the JSON-lines file.
    entries = {name: [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
               for name in ("alice", "bob")}
    printed = json.loads(alice.split("alice AUDIT ", 1)[1].splitlines()[0])
    assert printed == entries["alice"]
    weights, exploit = entries["alice"]
    assert (weights["function"], weights["destination"], weights["outcome"]) == (
        "__main__.make_weights", "bob", "sent")
    assert weights["bytes"] > 0 and weights["time"] >= weights["started"] and weights["job"] == "safe"
    assert (exploit["function"], exploit["outcome"]) == ("__main__.make_exploit", "failed")
    assert "does not accept" in exploit["reason"] and "posix" not in exploit["reason"]  # no echo to the sender
    # bob sent alice the result of `total` and an error report for `describe`, nothing else.
    assert [(e["function"], e["destination"], e["outcome"]) for e in entries["bob"]] == [
        ("common.total", "alice", "sent"), ("__main__.describe", "alice", "error")]


def test_an_impostor_with_a_valid_certificate_of_another_party_is_refused_both_ways(tmp_path):
    certs, marks = tmp_path / "certs", tmp_path / "marks"
    marks.mkdir()
    subprocess.run([sys.executable, "-m", "fed", "certs", "--parties", "alice,bob,carol", "--out", str(certs)],
                   check=True)  # as the README's TLS section does
    addrs = addresses("alice", "bob")

    parties = run_script("impostor.py", addrs, str(certs), str(marks), parties=["impostor", "alice", "bob"])

    assert_ok(parties)
    impostor = parties["impostor"].output
    # As a sender: alice's receiver refuses a push claiming bob from a certificate naming carol.
    assert "IMPOSTOR PUSH REFUSED" in impostor and "PERMISSION_DENIED" in impostor, impostor
    assert "does not name the claimed source party 'bob'" in impostor
    # As a server: alice pushed her secret to bob's address while the impostor held it, and it got nothing.
    assert "IMPOSTOR SERVER TOOK 0 VALUES" in impostor
    # The result is the honest one, and alice's only push reached the real bob.
    for name in ("alice", "bob"):
        assert f"{name} RESULT 42" in parties[name].output
    assert "alice SENT [('bob', 'sent')]" in parties["alice"].output


def test_a_party_with_its_own_valid_certificate_pushing_hostile_values_is_refused_and_its_peer_goes_on(tmp_path):
    certs, marks, canary = tmp_path / "certs", tmp_path / "marks", tmp_path / "canary"
    marks.mkdir()
    subprocess.run([sys.executable, "-m", "fed", "certs", "--parties", "alice,bob", "--out", str(certs)], check=True)

    parties = run_script("hostile_peer.py", addresses("alice", "bob"), str(certs), str(marks), str(canary))

    assert_ok(parties)
    alice, bob = parties["alice"].output, parties["bob"].output
    # bob's program got a clear refusal for each hostile value, naming what was wrong, and went on.
    refused = [line for line in bob.splitlines() if line.startswith("bob REFUSED")]
    assert len(refused) == 3, bob
    assert "posix.system is not on its serializing_allowed_list" in refused[0], refused
    assert "dtype that fed does not accept" in refused[1] and "malformed value" in refused[2], refused
    assert "bob HONEST AFTER 10" in bob and "alice HONEST AFTER 10" in alice
    assert "bob CANARY UNTOUCHED" in bob
    # alice was answered in fed's own words: nothing of what she sent came back.
    answers = [line for line in alice.splitlines() if line.startswith("alice HOSTILE ANSWER")]
    assert len(answers) == 3 and all("INVALID_ARGUMENT" in a for a in answers), answers
    assert not any("posix" in a or "AAAA" in a for a in answers), answers
    refusals, duplicates = map(int, bob.split("bob STATS ", 1)[1].split()[:2])
    assert refusals >= 3 and duplicates >= 3  # alice's own later pushes of those ids were dropped
