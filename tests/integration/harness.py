"""Start real parties as separate processes (each with its own Ray) and collect what they print."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from fed._cli.sessions import kill_session

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).parents[2]


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Parties' ports come from below the kernel's ephemeral range and above Ray's worker ports
# (10002-19999): a port the kernel hands out for bind(0) (Ray's daemons, gRPC servers, other
# tests) could otherwise be taken between choosing it and the party binding it, seconds later.
_PORTS = range(20_000, min(_ephemeral_low(), 32_768))


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports nobody listens on right now, outside the ranges Ray or the kernel pick from."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.choice(_PORTS)
        if port not in ports and _bindable(port):
            ports.append(port)
    return ports


def free_port_range(n: int) -> int:
    """The first of ``n`` consecutive free ports (for scripts that take a base port)."""
    while True:
        base = random.choice(_PORTS[: len(_PORTS) - n])
        if all(_bindable(port) for port in range(base, base + n)):
            return base


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def addresses(*parties: str) -> dict[str, str]:
    """A loopback address on a free port for each party."""
    return {p: f"127.0.0.1:{port}" for p, port in zip(parties, free_ports(len(parties)))}


@dataclass
class Party:
    """One party's process and everything it printed."""

    name: str
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode


def start(name: str, argv: list[str], delay: float = 0.0) -> Party:
    """Start ``argv`` in its own session, so it and the Ray it starts can be killed as a group."""
    if delay:
        time.sleep(delay)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True, cwd=ROOT)
    party = Party(name, proc)
    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=_read, args=(party, stream), daemon=True).start()
    return party


def _read(party: Party, stream: IO[bytes]) -> None:
    """Whole lines of one of the party's streams into its output. stdout and stderr are read apart:
    an unbuffered ``print`` writes its text and its newline separately, and a log line from
    another thread (the receiver's, in the driver) landing between them on one shared pipe would
    split the printed line."""
    for raw in stream:
        party.lines.append(raw.decode(errors="replace"))


def kill(party: Party) -> None:
    """SIGKILL everything in the party's session (its driver, Ray daemons and workers)."""
    kill_session(party.proc.pid)
    try:
        party.proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def wait_all(parties: list[Party], timeout: float) -> None:
    """Wait for every party to exit; on timeout fail with everything they printed."""
    deadline = time.monotonic() + timeout
    for party in parties:
        try:
            party.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"party {party.name} still running after {timeout} s\n" + report(parties)) from None
    time.sleep(0.2)  # let the reader threads take the last lines


def report(parties: list[Party]) -> str:
    return "\n".join(f"----- {p.name} (exit {p.returncode}) -----\n{p.output[-6000:]}" for p in parties)


def run_script(script: str, addrs: dict[str, str], *args: str, parties: list[str] | None = None,
               timeout: float = 240, delays: dict[str, float] | None = None,
               wait_for: list[str] | None = None, python: str = sys.executable) -> dict[str, Party]:
    """Run ``scripts/<script>`` once per party as ``script PARTY ADDRESSES_JSON *args`` (with
    ``python``), wait for every party (or those in ``wait_for``) to exit; kill all at the end."""
    started: list[Party] = []
    try:
        for name in parties or list(addrs):
            argv = [python, str(SCRIPTS / script), name, json.dumps(addrs), *args]
            started.append(start(name, argv, (delays or {}).get(name, 0.0)))
        wait_all([p for p in started if wait_for is None or p.name in wait_for], timeout)
        return {p.name: p for p in started}
    finally:
        for party in started:
            kill(party)


def assert_ok(parties: dict[str, Party]) -> None:
    """Every party exited 0."""
    bad = [p for p in parties.values() if p.returncode != 0]
    assert not bad, report(list(parties.values()))


def run_fed(*args: str, timeout: float = 240) -> tuple[int | None, str]:
    """The ``fed`` command (``fed run ...``) as a process of its own; returns its exit code and output.

    At the end it gets SIGTERM, on which ``fed run`` stops the sessions of the scripts it started,
    and then its own session is killed."""
    party = start("fed", [sys.executable, "-m", "fed", *args])
    try:
        wait_all([party], timeout)
    finally:
        try:
            os.killpg(party.proc.pid, signal.SIGTERM)
            party.proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        kill(party)
    return party.returncode, party.output
