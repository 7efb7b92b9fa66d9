"""The audit log: one entry for every value this party pushed to another party."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, TextIO


class AuditLog:
    """Entries of one job, kept in memory and, if ``path`` is given, appended to it as JSON lines.

    Each entry says what left this party: ``object_id``, the producing ``function`` and the full
    ``fingerprint``, the ``destination`` party, payload ``bytes``, when the push started and ended
    (``started``, ``time``: Unix seconds), and the ``outcome``: ``sent`` (the value), ``error``
    (the producing task failed; only a short error report left) or ``failed`` (with ``reason``;
    part of the value may have left before the push failed).
    """

    def __init__(self, job: str, party: str, path: str | None = None) -> None:
        self.job, self.party = job, party
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._file: TextIO | None = open(path, "a", encoding="utf-8") if path else None

    def record(self, *, object_id: str, fingerprint: str, destination: str, started: float,
               outcome: str, nbytes: int = 0, reason: str | None = None) -> None:
        """Add one entry (from any thread)."""
        entry = {"job": self.job, "source": self.party, "destination": destination, "object_id": object_id,
                 "function": fingerprint.split("@", 1)[0], "fingerprint": fingerprint, "bytes": nbytes,
                 "started": started, "time": time.time(), "outcome": outcome}
        if reason is not None:
            entry["reason"] = reason
        with self._lock:
            self._entries.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(entry) + "\n")
                self._file.flush()

    def entries(self) -> list[dict[str, Any]]:
        """A copy of every entry so far, oldest first."""
        with self._lock:
            return [dict(e) for e in self._entries]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
