"""Why a value could not be encoded here, or was not accepted from a peer."""

from __future__ import annotations


class EncodeError(TypeError):
    """A value fed's codec cannot carry; the message says what to do instead.

    ``public`` is what the peer that waits for the value is told: the same text without what an
    exception raised while pickling it said (that may come from the program's own code).
    """

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = message if public is None else public


class DecodeError(ValueError):
    """A value from a peer that this party does not accept.

    ``str(error)`` is fed's own short text, never anything decoded from the value, so it may go
    back to the peer; ``detail`` may hold more for this party's own log and error (already
    truncated and escaped).
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail
