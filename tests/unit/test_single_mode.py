"""Choosing single-controller mode, and where it places a party's work (no Ray started)."""

from __future__ import annotations

import pytest

from fed._runtime import single


@pytest.mark.parametrize(("env", "expected"), [(None, False), ("", False), ("0", False), ("false", False),
                                               ("1", True), ("true", True), ("bob,alice", True)])
def test_the_environment_variable_turns_it_on(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv(single.ENV, raising=False)
    else:
        monkeypatch.setenv(single.ENV, env)
    assert single.wanted(None, ["alice", "bob"]) is expected


def test_the_init_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(single.ENV, "1")
    assert single.wanted(False, ["alice"]) is False
    monkeypatch.delenv(single.ENV)
    assert single.wanted(True, ["alice"]) is True


def test_parties_named_in_the_environment_must_be_the_jobs(monkeypatch):
    monkeypatch.setenv(single.ENV, "alice,carol")
    with pytest.raises(ValueError, match=r"names parties \['alice', 'carol'\], but the script's cluster has "
                                         r"\['alice', 'bob'\]"):
        single.wanted(None, ["alice", "bob"])


def test_each_party_has_a_resource_and_tasks_and_actors_ask_for_it():
    assert single.ray_resources(["alice", "bob"]) == {"fed_party_alice": 1000.0, "fed_party_bob": 1000.0}
    runtime = object.__new__(single.SingleRuntime)  # placement needs no Ray
    runtime._placed = True
    assert runtime.placement("bob", {"num_cpus": 2}) == {"num_cpus": 2, "resources": {"fed_party_bob": 0.001}}
    assert runtime.placement("bob", {"resources": {"gpu_node": 1}}, actor=True) == {
        "resources": {"gpu_node": 1, "fed_party_bob": 0.001}, "num_cpus": 0}
    assert runtime.placement("bob", {"num_cpus": 1}, actor=True)["num_cpus"] == 1
    runtime._placed = False
    assert runtime.placement("bob", {"num_cpus": 2}) == {"num_cpus": 2}
