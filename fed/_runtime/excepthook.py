"""Notice that this party's program is dying of an uncaught exception (Ctrl+C included).

``fed.init`` chains a hook in front of ``sys.excepthook`` (whatever the application set keeps
running after it); ``fed.shutdown`` takes it out again. The hook only records the exception, so
that the ``fed.shutdown`` run by ``atexit`` tells the peers this party aborted, and why.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType

_previous: Callable | None = None
_on_failure: Callable[[BaseException], None] | None = None


def _hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if _on_failure is not None:
        _on_failure(exc)
    (_previous or sys.__excepthook__)(exc_type, exc, tb)


def install(on_failure: Callable[[BaseException], None]) -> None:
    """Call ``on_failure(exc)`` before the current ``sys.excepthook`` for an uncaught exception."""
    global _previous, _on_failure
    _on_failure = on_failure
    if sys.excepthook is not _hook:
        _previous = sys.excepthook
        sys.excepthook = _hook


def uninstall() -> None:
    """Put back the hook that was there before ``install`` (unless the application replaced ours)."""
    global _previous, _on_failure
    _on_failure = None
    if sys.excepthook is _hook:
        sys.excepthook = _previous or sys.__excepthook__
    _previous = None
