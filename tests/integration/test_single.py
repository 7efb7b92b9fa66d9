"""Single-controller mode: the same scripts, run once in one process that plays every party."""

from __future__ import annotations

import json
import re
import sys

import pytest
from harness import SCRIPTS, addresses, kill, report, run_fed, start, wait_all


def run_single(parties: str, script: str, *args: str, timeout: float = 240) -> tuple[int | None, str]:
    return run_fed("run", "--single", "--parties", parties, script, *args, timeout=timeout)


def test_the_quick_start_gives_the_same_result_as_across_parties():
    code, out = run_single("alice,bob", "examples/quickstart.py")

    assert code == 0, out
    # test_jobs checks that each real party prints the same line (prefixed with its name).
    assert "The result in party alice is 5" in out and "[alice]" not in out, out
    assert "single-controller mode: this process plays parties alice, bob" in out


@pytest.mark.parametrize("expose", [False, True])
def test_errors_are_seen_as_across_parties(expose):
    code, out = run_single("alice,bob", str(SCRIPTS / "errors.py"), json.dumps(addresses("alice", "bob")),
                           *(["--expose"] if expose else []))

    assert code == 0, out
    # One process plays every party: fed.get of a failed task raises the task's own error (as at
    # its owner); a task at bob that takes the failed value fails with FedRemoteError naming alice.
    assert "alice OWN ERROR ValueError" in out and "alice DOWNSTREAM ERROR from alice" in out, out
    assert "alice ERRORS OK" in out


def test_three_parties_with_an_actor():
    code, out = run_single("alice,bob,carol", str(SCRIPTS / "three_parties.py"),
                           json.dumps(addresses("alice", "bob", "carol")))

    assert code == 0, out
    assert "alice VALUES [3, 10, 6]" in out


def test_placement_allow_list_and_size_limit_hold_as_across_parties():
    code, out = run_single("alice,bob", str(SCRIPTS / "single_checks.py"), json.dumps(addresses("alice", "bob")))

    assert code == 0, out
    for check in ("placement", "refused", "size", "no listening", "allowed"):
        assert f"CHECK {check} OK" in out, out
    refused = re.search(r"CHECK refused OK: (.*)", out).group(1)
    assert "perimeter_types.Weights is not on its serializing_allowed_list" in refused, refused


def test_the_parties_given_to_fed_run_must_be_the_scripts():
    code, out = run_single("alice,carol", str(SCRIPTS / "three_parties.py"),
                           json.dumps(addresses("alice", "bob", "carol")))

    assert code != 0
    assert "FED_SINGLE_CONTROLLER='alice,carol' names parties ['alice', 'carol'], but the script's cluster has " \
           "['alice', 'bob', 'carol']" in out, out


def test_fifty_parties_on_one_machine():
    party = start("many", [sys.executable, str(SCRIPTS / "many_parties.py"), "50", "--rounds", "3"])
    try:
        wait_all([party], 300)
    finally:
        kill(party)

    assert party.returncode == 0, report([party])
    result = re.search(r"RESULT (\S+) EXPECTED (\S+)", party.output)
    assert result and result.group(1) == result.group(2), party.output
    assert len(re.findall(r"ROUND \d+ ", party.output)) == 3
