"""Run a benchmark's measuring children: each leads its own session and prints one RESULT line;
everything in a child's session (its Ray daemons and workers too) is killed when it is done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from fed._cli.sessions import kill_session as kill_leader_session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from harness import free_ports  # noqa: E402,F401  (ports no Ray daemon or kernel bind(0) can take)

RESULT = "RESULT "


def print_result(**numbers: Any) -> None:
    print(RESULT + json.dumps(numbers), flush=True)


def spawn(script: str, args: list[str], log: IO[str]) -> subprocess.Popen:
    """``script`` as a child that leads a new session."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, script, *args], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, cwd=ROOT, start_new_session=True)


def run_children(script: str, named_args: dict[str, list[str]], timeout: float = 900.0) -> dict[str, dict]:
    """Run the children at once; each one's RESULT numbers. They are killed in any case."""
    procs: dict[str, tuple[subprocess.Popen, IO[str]]] = {}
    try:
        for name, args in named_args.items():
            log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a full pipe would stall a party
            procs[name] = (spawn(script, args, log), log)
        deadline = time.monotonic() + timeout
        codes = [proc.poll() for proc, _ in procs.values()]
        while None in codes and not any(codes) and time.monotonic() < deadline:  # stop at the first failure
            time.sleep(0.2)
            codes = [proc.poll() for proc, _ in procs.values()]
        results = {}
        for name, (proc, log) in procs.items():
            log.seek(0)
            output = log.read()
            lines = [line for line in output.splitlines() if line.startswith(RESULT)]
            if proc.poll() != 0 or not lines:
                raise RuntimeError(f"{name} failed (exit {proc.poll()}):\n{output[-4000:]}")
            # raw_decode: another process's log may run on after the numbers on the same line
            results[name] = json.JSONDecoder().raw_decode(lines[-1][len(RESULT):])[0]
        return results
    finally:
        for proc, log in procs.values():
            kill_leader_session(proc.pid)
            proc.wait()
            log.close()
