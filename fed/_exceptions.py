"""All exceptions raised by fed.

    Exception
    ├── FedError                 base of everything fed raises itself
    │   ├── FedRemoteError       a value another party owns could not be produced there
    │   ├── FedSendError         a value could not be delivered to a peer
    │   ├── FedPeerLostError     a peer this party waits for stopped answering (its process died?)
    │   └── FedDivergenceError   the parties' programs took different paths
    └── ValueError / TypeError   misuse of the API (bad config, calling a remote function directly)
"""

from __future__ import annotations


class FedError(Exception):
    """Base class of the errors fed raises itself."""


class FedRemoteError(FedError):
    """A value owned by another party failed to be produced at that party.

    ``src_party`` names the party, ``error_type`` the exception type raised there; ``cause`` holds
    the remote message and trace when the owner runs with ``expose_error_trace=True``.
    """

    def __init__(
        self, src_party: str, error_type: str = "Exception", cause: str | None = None
    ) -> None:
        self.src_party = src_party
        self.error_type = error_type
        self.cause = cause
        text = f"{error_type} raised at party {src_party!r}"
        if cause:
            text += f": {cause}"
        else:
            text += " (its owner hides the message; set expose_error_trace=True there to see it)"
        super().__init__(text)

    def __reduce__(self):
        return (type(self), (self.src_party, self.error_type, self.cause))


def seen_elsewhere(exc: BaseException, party: str, expose_error_trace: bool) -> FedRemoteError:
    """What other parties see of ``exc``, raised by a task at ``party``: its type, and its message
    only with ``expose_error_trace``. Ray's wrapper is looked through (its ``cause``), and an error
    that came from another party keeps naming that party."""
    cause = getattr(exc, "cause", None)
    origin = cause if isinstance(cause, BaseException) else exc
    if isinstance(origin, FedRemoteError):
        return origin
    return FedRemoteError(party, type(origin).__name__, str(exc) if expose_error_trace else None)


class FedSendError(FedError):
    """A value could not be delivered to a peer."""


class FedDivergenceError(FedError):
    """The parties ran different programs: a value arrived for a call that differs from ours."""


class FedPeerLostError(FedError):
    """A peer this party waits for stopped answering for ``liveness_timeout_in_ms``."""
