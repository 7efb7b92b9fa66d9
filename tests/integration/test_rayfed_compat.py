"""A RayFed 0.2 program runs unchanged: its public surface across real parties."""

from __future__ import annotations

import json
import re

import pytest
from faultproxy import FaultProxy
from harness import addresses, assert_ok, run_script


def test_rayfed_public_surface_across_two_parties():
    parties = run_script("rayfed_compat.py", addresses("alice", "bob"), timeout=180)

    assert_ok(parties)
    for name in ("alice", "bob"):
        assert f"{name} COMPAT OK" in parties[name].output
    # grpc_channel_options that fed sets itself are named, not applied
    assert "grpc_channel_options grpc.max_send_message_length are not applied" in parties["alice"].output


def _through_a_slow_proxy(real: dict[str, str], proxy: FaultProxy) -> str:
    """The job's cluster: alice reaches bob through ``proxy``; bob listens on his real port."""
    return json.dumps({"alice": {"address": real["alice"]},
                       "bob": {"address": proxy.address, "listen_addr": real["bob"]}})


@pytest.mark.parametrize("mode", ["abort", "continue"])
def test_shutdown_on_error_stops_pushes_in_flight_unless_told_to_wait(mode):
    real = addresses("alice", "bob")
    with FaultProxy(real["bob"]) as proxy:
        proxy.bandwidth(5_000_000)  # 30 MB: about 6 s
        parties = run_script("rayfed_shutdown.py", real, mode, _through_a_slow_proxy(real, proxy), timeout=180)

    assert_ok(parties)
    took = float(re.search(r"alice SHUTDOWN TOOK ([0-9.]+) s", parties["alice"].output).group(1))
    bob = parties["bob"].output
    if mode == "abort":
        assert took < 4, parties["alice"].output
        assert "bob ENDED" in bob and "its program stopped before sending value" in bob, bob
    else:
        assert took >= 3, parties["alice"].output  # it waited for the push
        assert "bob GOT 30000000" in bob, bob


def test_grpc_retry_policy_drives_the_push_retries():
    """Each try makes progress before its connection is cut, so without maxAttempts the push would
    go on trying; with maxAttempts 3 it gives up after the third cut, and bob is told."""
    real = addresses("alice", "bob")
    with FaultProxy(real["bob"]) as proxy:
        proxy.cut_every(2_000_000)
        parties = run_script("rayfed_shutdown.py", real, "retry", _through_a_slow_proxy(real, proxy), timeout=120)
        cuts = proxy.cuts

    assert_ok(parties)
    line = next(x for x in parties["alice"].output.splitlines() if x.startswith("alice GAVE UP"))
    assert "gave up after 3 tries: grpc_retry_policy maxAttempts=3" in line
    assert cuts == 3
    assert "bob ENDED" in parties["bob"].output and "gave up after 3 tries" in parties["bob"].output


def test_proxy_max_restarts_restarts_a_killed_receiver_which_serves_the_next_values(tmp_path):
    parties = run_script("restart.py", addresses("alice", "bob"), str(tmp_path), timeout=180)

    assert_ok(parties)
    bob = parties["bob"].output
    assert "bob RESTARTED True" in bob
    assert "was restarted (proxy_max_restarts) and listens again" in bob
    for name in ("alice", "bob"):
        assert f"{name} FIRST 11" in parties[name].output and f"{name} SECOND 12" in parties[name].output
