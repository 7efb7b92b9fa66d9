"""Whole jobs across real parties: both init forms, TLS, concurrent jobs, late start, fed run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from faultproxy import FaultProxy
from harness import ROOT, SCRIPTS, addresses, assert_ok, kill, report, run_script, start, wait_all

from fed._security.certs import make_certs


def results(parties, job=None):
    """The RESULT each party printed for ``job``."""
    found = {}
    for name, party in parties.items():
        for line in party.output.splitlines():
            if line.startswith(f"{name} RESULT {job} "):
                found[name] = line.split()[-1]
    return found


def test_addresses_form_with_ray_started_by_the_caller():
    parties = run_script("job.py", addresses("alice", "bob"), "--form", "addresses", "--job", "formb")

    assert_ok(parties)
    assert results(parties, "formb") == {"alice": "5", "bob": "5"}


def test_mutual_tls_with_generated_certificates(tmp_path):
    make_certs(["alice", "bob"], tmp_path)

    parties = run_script("job.py", addresses("alice", "bob"), "--tls", str(tmp_path), "--base", "10")

    assert_ok(parties)
    assert results(parties) == {"alice": "23", "bob": "23"}


def test_two_jobs_at_once_between_the_same_parties_stay_apart():
    jobs = {"job-a": ("1", addresses("alice", "bob")), "job-b": ("100", addresses("alice", "bob"))}
    started = []
    try:
        for job, (base, addrs) in jobs.items():
            for party in addrs:
                argv = [sys.executable, str(SCRIPTS / "job.py"), party, json.dumps(addrs), "--job", job,
                        "--base", base]
                started.append(start(f"{job}/{party}", argv))
        wait_all(started, 240)
    finally:
        for p in started:
            kill(p)

    assert all(p.returncode == 0 for p in started), report(started)
    out = {p.name: p.output for p in started}
    assert "alice RESULT job-a 5" in out["job-a/alice"] and "bob RESULT job-a 5" in out["job-a/bob"]
    assert "alice RESULT job-b 203" in out["job-b/alice"] and "bob RESULT job-b 203" in out["job-b/bob"]


def test_a_party_that_starts_late_is_waited_for():
    parties = run_script("job.py", addresses("alice", "bob"), delays={"bob": 10.0})

    assert_ok(parties)
    assert results(parties) == {"alice": "5", "bob": "5"}


@pytest.mark.parametrize("tls", [False, True])
def test_quick_start_through_fed_run(tmp_path, tls):
    fed_cli = [sys.executable, "-m", "fed"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    tls_args = []
    if tls:  # the README's TLS section, end to end
        subprocess.run([*fed_cli, "certs", "--parties", "alice,bob", "--out", str(tmp_path)], check=True, env=env)
        tls_args = ["--tls", str(tmp_path)]

    proc = subprocess.run([*fed_cli, "run", "--parties", "alice,bob", "examples/quickstart.py", *tls_args],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[alice] The result in party alice is 5" in proc.stdout
    assert "[bob] The result in party bob is 5" in proc.stdout
    assert ("parties are not authenticated" in proc.stdout + proc.stderr) != tls


def test_a_peer_that_finished_before_this_party_got_to_its_barrier_counts_as_present():
    """alice pings bob, pushes to him and says goodbye while bob's fed.init cannot reach her (his
    route to her refuses every connection): bob passes the barrier on what reached him."""
    addrs = addresses("alice", "bob")
    with FaultProxy(addrs["alice"]) as route:
        route.refuse()
        parties = run_script("fast_peer.py", addrs, route.address, delays={"bob": 3.0}, timeout=120)

    assert_ok(parties)
    assert "bob PASSED THE BARRIER" in parties["bob"].output
    assert "bob RESULT 6" in parties["bob"].output
