"""RayFed 0.2's proxy plug-ins across real parties: a user's own link (``scripts/tcp_proxies.py``,
plain TCP sockets) carries every message of a job; fed still decodes and checks what arrives."""

from __future__ import annotations

import json

import pytest
from harness import addresses, assert_ok, report, run_script


def crossed(log_dir, party: str) -> list[dict]:
    """What the user's receiver proxy of ``party`` took, one entry per message."""
    path = log_dir / f"proxy.{party}"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("kind", ["pair", "both"])
def test_a_job_runs_over_the_users_proxies(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("FED_TEST_PROXY_LOG", str(tmp_path / "proxy"))
    parties = run_script("plugin_job.py", addresses("alice", "bob"), kind, "job", timeout=180)
    assert_ok(parties)
    for name, party in parties.items():
        assert f"{name} SMALL 499500 BIG 4499998500000\n" in party.output, report(list(parties.values()))
    assert "alice BOOM RayTaskError(ValueError)" in parties["alice"].output
    assert "bob BOOM FedRemoteError: ValueError raised at party 'alice'" in parties["bob"].output
    assert "bob RECV {'k': [1, 2]}\n" in parties["bob"].output
    for name, party in parties.items():  # a wait longer than the liveness timeout, kept by heartbeats
        assert f"{name} SLOW late\n" in party.output, report(list(parties.values()))
    # Every value crossed in the user's proxy, as fed's wire format (a header, then the payload).
    at_alice = {(m["up"], m["down"]): m["bytes"] for m in crossed(tmp_path, "alice")}
    assert at_alice[("3:0", "fed-value")] > 24_000_000  # bob's 3,000,000 int64, in one message
    # Heartbeats are tried until delivered, in order; bob's 2.5 s task makes sure several are due
    # while both parties run (a job shorter than one heartbeat interval could end before the
    # first one: a heartbeat refused before the peer listened is tried again only an interval later).
    first_beats = {("fed-alive-0", "fed-alive"), ("fed-alive-1", "fed-alive")}
    assert first_beats <= set(at_alice), (at_alice, report(list(parties.values())))
    at_bob = {(m["up"], m["down"]) for m in crossed(tmp_path, "bob")}
    assert {("1:0", "fed-value"), ("send:7:8", "fed-value")} | first_beats <= at_bob, report(list(parties.values()))


def test_a_peer_that_dies_is_found_lost_by_its_stopped_heartbeats(tmp_path, monkeypatch):
    monkeypatch.setenv("FED_TEST_PROXY_LOG", str(tmp_path / "proxy"))
    parties = run_script("plugin_job.py", addresses("alice", "bob"), "pair", "die", timeout=180)
    assert parties["alice"].returncode == 0, report(list(parties.values()))
    ended = [line for line in parties["alice"].lines if line.startswith("alice ENDED")]
    assert ended and "FedPeerLostError: party 'bob' is lost" in ended[0], report(list(parties.values()))
    seconds = float(ended[0].split("after ")[1].split(" s")[0])
    assert seconds < 3 + 2 + 2 + 4  # bob's 3 s, the liveness timeout, the fetch grace, slack
    beats = [m for m in crossed(tmp_path, "alice") if m["down"] == "fed-alive"]
    assert len(beats) >= 5  # bob's heartbeats came while he lived (every 0.4 s)
