"""Follow pushes in flight and report the ones that fail, while the program goes on."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable


def unwrap(exc: BaseException) -> BaseException:
    """The error inside Ray's task-error wrapper, or ``exc`` itself."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def failure_of(push: concurrent.futures.Future) -> BaseException | None:
    """The error a finished push ended with (unwrapped), or None if it succeeded."""
    if push.cancelled():
        return concurrent.futures.CancelledError()
    error = push.exception()
    return None if error is None else unwrap(error)


class SendWatcher:
    """Counts pushes in flight and calls ``on_failure`` (on the completing thread) for each that fails."""

    def __init__(self, on_failure: Callable[[BaseException], None]) -> None:
        self._on_failure = on_failure
        self._changed = threading.Condition()
        self._in_flight = 0
        self._failures: list[BaseException] = []

    def add(self, push: concurrent.futures.Future) -> None:
        """Follow one push."""
        with self._changed:
            self._in_flight += 1
        push.add_done_callback(self._done)

    def _done(self, push: concurrent.futures.Future) -> None:
        error = failure_of(push)
        with self._changed:
            self._in_flight -= 1
            if error is not None:
                self._failures.append(error)
            self._changed.notify_all()
        if error is not None:
            self._on_failure(error)

    def drain(self, timeout: float) -> tuple[int, list[BaseException]]:
        """Wait up to ``timeout`` s for pushes in flight; return (still in flight, failures so far)."""
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight == 0, timeout)
            return self._in_flight, list(self._failures)
