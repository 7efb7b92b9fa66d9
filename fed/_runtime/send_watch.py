"""Follow pushes in flight and report the ones that fail, while the program goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import ray

_POLL_S = 0.2


class SendWatcher:
    """A daemon thread that waits on the ObjectRefs of pushes and calls ``on_failure`` for failed ones."""

    def __init__(self, on_failure: Callable[[BaseException], None]) -> None:
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._incoming: list[Any] = []
        self._in_flight = 0
        self._failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fed-send-watch", daemon=True)
        self._thread.start()

    def add(self, ref: Any) -> None:
        """Follow one push."""
        with self._lock:
            self._incoming.append(ref)
            self._in_flight += 1

    def _loop(self) -> None:
        pending: list[Any] = []
        while not self._stop.is_set():
            with self._lock:
                pending += self._incoming
                self._incoming.clear()
            if not pending:
                self._stop.wait(_POLL_S)
                continue
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL_S)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a failed push is reported, not raised here
                    cause = getattr(exc, "cause", None)  # the sender's own error inside Ray's wrapper
                    error = cause if isinstance(cause, BaseException) else exc
                    self._failures.append(error)
                    self._on_failure(error)
            with self._lock:
                self._in_flight -= len(ready)

    def drain(self, timeout: float) -> tuple[int, list[BaseException]]:
        """Wait up to ``timeout`` s for pushes in flight; stop; return (still in flight, failures)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._in_flight and self._thread.is_alive():
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(2 * _POLL_S + 1)
        return self._in_flight, list(self._failures)
