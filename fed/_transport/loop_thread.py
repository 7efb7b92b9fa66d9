"""An asyncio event loop on a daemon thread of the driver, shared by the sender and receiver there.

The transport's policy is asyncio code; in the driver process it runs on this loop, and the
driver's threads hand it work with ``run`` (a ``concurrent.futures.Future`` of the result). The
loop ends when the last of its users releases it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any


class LoopThread:
    """One event loop running on its own daemon thread until every user has released it."""

    def __init__(self, name: str = "fed-transport") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._users = 0
        self._lock = threading.Lock()

    def acquire(self) -> LoopThread:
        """Count one more user (the first starts the thread); ``release`` once per ``acquire``."""
        with self._lock:
            self._users += 1
            if not self._thread.is_alive():
                self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Run ``coro`` on the loop; the future holds its result or its error."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def release(self, timeout: float) -> None:
        """One user is done; the last one stops the loop and waits up to ``timeout`` s for the thread."""
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
