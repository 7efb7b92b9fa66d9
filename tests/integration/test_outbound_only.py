"""Parties that accept no connections, across real parties (each its own process and Ray, gRPC
over loopback): their peers' values reach them over the standby calls they open
(``fed._transport.reverse``), also through an HTTP CONNECT proxy."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from connect_proxy import ConnectProxy
from harness import addresses, assert_ok, run_script

N = 30_000_000 // 8  # the script's array elements


def expected(parties: list[str]) -> list[int]:
    """What the script's sums come to: every other party's seed, last element and size."""
    seeds = {p: i + 1 for i, p in enumerate(parties)}
    return [sum(2 * seeds[q] + N for q in parties if q != p) for p in parties]


def certs(tmp_path, parties: str) -> str:
    out = tmp_path / "certs"
    subprocess.run([sys.executable, "-m", "fed", "certs", "--parties", parties, "--out", str(out)], check=True)
    return str(out)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_party_that_listens_on_no_port_takes_and_sends_values(tmp_path, tls):
    real = addresses("alice", "bob")
    cluster = {"alice": {"address": real["alice"]}, "bob": {"outbound_only": True}}
    marks = tmp_path / "marks"
    marks.mkdir()

    parties = run_script("outbound_only.py", real, json.dumps(cluster), str(marks),
                         certs(tmp_path, "alice,bob") if tls else "-")

    assert_ok(parties)
    for name in ("alice", "bob"):
        assert f"{name} SUMS {json.dumps(expected(['alice', 'bob']))}" in parties[name].output
    assert "bob NEW LISTENING []" in parties["bob"].output  # fed opened no port at bob
    assert re.search(r"alice NEW LISTENING \[\d+\]", parties["alice"].output)


def test_a_three_party_job_with_one_outbound_only_party(tmp_path):
    real = addresses("alice", "bob", "carol")
    cluster = {"alice": {"address": real["alice"]}, "bob": {"address": real["bob"]}, "carol": {"outbound_only": True}}
    marks = tmp_path / "marks"
    marks.mkdir()

    parties = run_script("outbound_only.py", real, json.dumps(cluster), str(marks), "-")

    assert_ok(parties)
    for name in ("alice", "bob", "carol"):
        assert f"{name} SUMS {json.dumps(expected(['alice', 'bob', 'carol']))}" in parties[name].output
    assert "carol NEW LISTENING []" in parties["carol"].output


def test_an_outbound_only_party_behind_an_http_connect_proxy(tmp_path):
    real = addresses("alice", "bob")
    port = real["alice"].rsplit(":", 1)[1]
    with ConnectProxy({"alice.internal": "127.0.0.1"}) as proxy:
        # bob knows alice only by a name the proxy alone resolves: every connection of his goes through it
        cluster = {"alice": {"address": f"alice.internal:{port}", "listen_addr": real["alice"]},
                   "bob": {"outbound_only": True, "proxy": proxy.url}}
        marks = tmp_path / "marks"
        marks.mkdir()

        parties = run_script("outbound_only.py", real, json.dumps(cluster), str(marks), certs(tmp_path, "alice,bob"))

        assert_ok(parties)
        for name in ("alice", "bob"):
            assert f"{name} SUMS {json.dumps(expected(['alice', 'bob']))}" in parties[name].output
        assert "bob NEW LISTENING []" in parties["bob"].output
        # values, liveness and standbys: a connection each, all tunnelled to alice (and the goodbye's
        # own, when alice's server is still up to take it: a goodbye is one try, and alice may be done)
        assert len(proxy.tunnels) >= 3 and set(proxy.tunnels) == {f"alice.internal:{port}"}, proxy.tunnels


LOST = r"FedPeerLostError: party 'bob' is lost .*; value 2:0 \(__main__.slow@bob#2\) that party 'alice' waits for"
STOPS = {
    "killed": LOST,
    "frozen": LOST,
    "raises": r"FedRemoteError: ValueError raised at party 'bob': its program stopped before sending value 2:0",
    "other_party": r"FedDivergenceError: the programs of parties '\w+' and '\w+' diverged at call 2",
}


@pytest.mark.parametrize("mode", sorted(STOPS))
def test_a_party_waiting_on_an_outbound_only_peer_learns_within_seconds_that_it_stopped(mode):
    # scripts/failures.py, with bob outbound-only: alice's liveness pings ride on his standbys
    parties = run_script("failures.py", addresses("alice", "bob"), mode, "outbound", timeout=120,
                         wait_for=["alice"] if mode == "frozen" else None)

    alice, bob = parties["alice"].output, parties["bob"].output
    assert parties["alice"].returncode == 0, alice
    stopped = float(re.search(r"bob STOPPING at ([\d.]+)", bob).group(1))
    raised = re.search(r"alice RAISED at ([\d.]+) (.*)", alice)
    assert raised and re.search(STOPS[mode], raised.group(2)), alice
    assert float(raised.group(1)) - stopped < (5 if mode == "raises" else 10), alice
