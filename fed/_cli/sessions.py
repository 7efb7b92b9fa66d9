"""Kill a process and everything it started: its whole session, Ray daemons and workers included."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (none where there is no /proc)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            state, _ppid, _pgrp, session = (entry / "stat").read_text().rpartition(")")[2].split()[:4]
        except (OSError, ValueError):
            continue
        if int(session) == sid and state != "Z":
            pids.append(int(entry.name))
    return pids


def kill_session(leader: int) -> None:
    """SIGKILL the process group of ``leader`` (started with ``start_new_session=True``), then whatever
    is left in its session: Ray gives each worker a process group of its own, so the group alone
    would miss them."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    for _ in range(50):  # until empty: a worker may have been starting meanwhile
        pids = session_pids(leader)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
