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
