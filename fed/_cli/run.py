"""`fed run`: start one process per party and multiplex their output."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import IO

from fed._cli.sessions import kill_session
from fed._runtime.single import ENV as SINGLE_ENV

GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.05
_READER_JOIN_SECONDS = 2.0
_OUTPUT_LOCK = threading.Lock()


@dataclass
class _Party:
    name: str
    proc: subprocess.Popen[bytes]
    readers: tuple[threading.Thread, ...]

    def join_output(self) -> None:
        """Wait (a little) until its output so far is printed."""
        for reader in self.readers:
            reader.join(_READER_JOIN_SECONDS)


def run_parties(
    parties: list[str], script: str, args: list[str], python: str = sys.executable
) -> int:
    """Run `python -u script PARTY *args` once per party; return the first failure.

    Every output line is printed as `[party] line`. When one party exits
    non-zero, the others are stopped and its exit code is returned; 0 means all
    parties succeeded, 130 that the launcher was interrupted. Each party runs in
    its own session, and that whole process group (for example the Ray daemons
    it started) is killed before returning. Raises `ValueError` for an empty or
    duplicated party list or a missing script.

    >>> run_parties(["alice", "bob"], "train.py", ["--epochs", "3"])  # doctest: +SKIP
    0
    """
    _validate(parties, script)
    started: list[_Party] = []
    with _sigterm_as_interrupt():
        try:
            for name in parties:
                started.append(_start(name, [python, "-u", script, name, *args]))
            return _supervise(started)
        except KeyboardInterrupt:
            _stop(started, signal.SIGINT)
            return 130
        finally:
            for party in started:
                _signal_group(party, signal.SIGKILL)
            for party in started:
                party.join_output()


def run_single(parties: list[str], script: str, args: list[str], python: str = sys.executable) -> int:
    """Run `python -u script FIRST_PARTY *args` once, playing every party (single-controller mode).

    The script's `fed.init` sees `FED_SINGLE_CONTROLLER` naming the parties. Its output is printed
    as it is; its exit code is returned (130 if the launcher was interrupted), and everything it
    started (Ray included) is killed before returning.

    >>> run_single(["alice", "bob"], "train.py", ["--epochs", "3"])  # doctest: +SKIP
    0
    """
    _validate(parties, script)
    env = {**os.environ, SINGLE_ENV: ",".join(parties)}
    party = _start(None, [python, "-u", script, parties[0], *args], env)
    with _sigterm_as_interrupt():
        try:
            return _supervise([party])
        except KeyboardInterrupt:
            _stop([party], signal.SIGINT)
            return 130
        finally:
            _signal_group(party, signal.SIGKILL)
            party.join_output()


def _validate(parties: list[str], script: str) -> None:
    if not parties:
        raise ValueError("at least one party is required")
    for name in parties:
        if not name:
            raise ValueError("party names must not be empty")
        if parties.count(name) > 1:
            raise ValueError(f"duplicate party {name!r}")
    if not os.path.isfile(script):
        raise ValueError(f"script not found: {script}")


def _start(name: str | None, command: list[str], env: dict[str, str] | None = None) -> _Party:
    """Start ``command`` in a session of its own; its lines are printed as ``[name] line`` (as they
    are without a name). Its stdout and stderr are read apart, line by line: through one pipe, a
    line it prints unbuffered (``-u``: the text, then the newline) could be split by a log line
    written between the two."""
    proc = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    readers = tuple(
        threading.Thread(target=_relay, args=(name, stream), name=f"fed-run-{name or 'single'}-{what}", daemon=True)
        for stream, what in ((proc.stdout, "out"), (proc.stderr, "err"))
    )
    for reader in readers:
        reader.start()
    return _Party(name or "single", proc, readers)


def _relay(name: str | None, stream: IO[bytes]) -> None:
    with stream:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            _say(f"[{name}] {line}" if name else line)


def _say(line: str) -> None:
    with _OUTPUT_LOCK:
        print(line, flush=True)


def _supervise(parties: list[_Party]) -> int:
    running = list(parties)
    while running:
        for party in list(running):
            code = party.proc.poll()
            if code is None:
                continue
            running.remove(party)
            if code != 0:
                party.join_output()  # its last words first
                _report_failure(party, code, running)
                _stop(running, signal.SIGTERM)
                return code if code > 0 else 128 - code
        time.sleep(_POLL_SECONDS)
    return 0


def _report_failure(party: _Party, code: int, running: list[_Party]) -> None:
    how = f"exited with code {code}" if code > 0 else f"was killed by signal {-code}"
    others = ", ".join(p.name for p in running)
    tail = f"; stopping {others}" if others else ""
    _say(f"fed run: party {party.name} {how}{tail}")


def _stop(parties: list[_Party], sig: signal.Signals) -> None:
    """Send `sig` to each party's group, then SIGKILL it after the grace period."""
    for party in parties:
        _signal_group(party, sig)
    deadline = time.monotonic() + GRACE_SECONDS
    for party in parties:
        try:
            party.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for party in parties:
        _signal_group(party, signal.SIGKILL)


def _signal_group(party: _Party, sig: signal.Signals) -> None:
    if sig == signal.SIGKILL:  # everything the party started, Ray workers in groups of their own too
        kill_session(party.proc.pid)
        party.proc.wait()
        return
    # The party is its session's leader, so its pid is the process group id.
    try:
        os.killpg(party.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # nothing left in the group


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM to the launcher like Ctrl-C (only possible in the main thread).

    A launcher started in the background of a shell (``fed run ... &``, nohup) starts with SIGINT
    ignored, and its parties would inherit that: the SIGINT that stops them would do nothing. So
    while parties run, SIGINT has Python's handler here, and the parties start with it too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        if previous_int is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
