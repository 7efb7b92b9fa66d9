"""Multi-controller semantics across real parties: errors, three parties, re-init, taken ports."""

from __future__ import annotations

import json

import pytest
from harness import addresses, assert_ok, run_script


@pytest.mark.parametrize("expose", [False, True])
def test_errors_reach_every_party(expose):
    parties = run_script("errors.py", addresses("alice", "bob"), *(["--expose"] if expose else []))

    assert_ok(parties)
    assert "alice OWN ERROR ValueError" in parties["alice"].output
    assert "bob REMOTE ERROR ValueError raised at party 'alice'" in parties["bob"].output
    for name in ("alice", "bob"):
        assert f"{name} DOWNSTREAM ERROR from alice" in parties[name].output
        assert f"{name} ERRORS OK" in parties[name].output


def test_three_parties():
    parties = run_script("three_parties.py", addresses("alice", "bob", "carol"))

    assert_ok(parties)
    for name in ("alice", "bob", "carol"):
        assert f"{name} VALUES [3, 10, 6]" in parties[name].output


def test_init_again_after_shutdown_in_the_same_process():
    parties = run_script("reinit.py", addresses("alice", "bob"), json.dumps(addresses("alice", "bob")))

    assert_ok(parties)
    for name in ("alice", "bob"):
        out = parties[name].output
        assert f"{name} RESULT first 11" in out and f"{name} RESULT second 21" in out
        assert f"{name} STALE REFUSED" in out
        assert f"{name} REINIT OK" in out


def test_a_taken_port_is_a_clear_error():
    addrs = addresses("alice", "bob")

    parties = run_script("port_taken.py", addrs, parties=["alice"])

    assert_ok(parties)
    assert "PORT TAKEN" in parties["alice"].output


@pytest.mark.parametrize("sigint", ["handled", "ignored"])
def test_exit_on_sending_failure_calls_the_handler_and_stops_the_party(sigint):
    parties = run_script("send_failure.py", addresses("alice", "bob"), sigint, parties=["alice"], timeout=120)

    out = parties["alice"].output
    assert parties["alice"].returncode != 0, out
    assert "HANDLER CALLED FedSendError: could not push 1:0" in out and "'bob'" in out
    assert "STOPPED after" in out and "NOT STOPPED" not in out



@pytest.mark.parametrize(("mode", "reason"), [
    ("local", "__main__.Local and it cannot be pickled either (PicklingError). Its class cannot be found by its name"),
    ("function", "builtins.function and it cannot be pickled either"),
])
def test_a_value_fed_cannot_encode_reaches_the_peer_as_an_error_that_says_why(mode, reason):
    parties = run_script("unencodable.py", addresses("alice", "bob"), mode, timeout=120)

    assert_ok(parties)
    bob, alice = parties["bob"].output, parties["alice"].output
    told = next(line for line in bob.splitlines() if line.startswith("bob GOT"))
    assert told.startswith("bob GOT FedRemoteError from alice: FedSendError: value ")
    assert "produce@alice#1) cannot be sent to 'bob'" in told  # the value and its producing function
    assert reason in told
    assert "fed.register_type" in told and "plain data" in told  # what to do
    assert "Can't pickle" not in told  # pickle's own words (they may quote the program's) stay at alice
    assert "alice HANDLER FedSendError: value " in alice and "Can't pickle" in alice
    assert "alice AUDIT failed __main__.produce value " in alice


def test_a_value_ray_itself_cannot_store_fails_the_task_at_every_party():
    parties = run_script("unencodable.py", addresses("alice", "bob"), "lock", timeout=120)

    assert_ok(parties)
    assert "alice OWN ERROR" in parties["alice"].output
    assert "bob GOT FedRemoteError from alice: " in parties["bob"].output
    assert "alice AUDIT error __main__.produce" in parties["alice"].output


def test_with_allow_unsafe_deserialization_a_class_defined_in_a_task_crosses_by_value():
    parties = run_script("unencodable.py", addresses("alice", "bob"), "by_value", timeout=120)

    assert_ok(parties)
    assert "bob GOT VALUE Local x=3" in parties["bob"].output
    assert "alice HANDLER" not in parties["alice"].output
    assert "alice AUDIT sent __main__.produce" in parties["alice"].output
