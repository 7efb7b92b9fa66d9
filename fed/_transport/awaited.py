"""The values this party's program waits for from its peers, and ending the waits a peer says
will never be served (``fed._transport.pushed`` is the owner's side of that exchange)."""

from __future__ import annotations

import logging

from fed._exceptions import FedError
from fed._transport import wire
from fed._transport.mailbox import Arrived, Mailbox

logger = logging.getLogger("fed.receiver")
Key = tuple[str, str]  # (source party, object id)


class Awaited:
    """How many calls the program had made when it asked for each awaited value (its liveness
    pings tell the owner), and the errors for values their owner will not send."""

    def __init__(self, party: str, box: Mailbox) -> None:
        self._party = party
        self._box = box
        self._asked_at: dict[Key, int] = {}

    def asked(self, key: Key, asked_at: int) -> None:
        self._asked_at[key] = asked_at

    def done(self, key: Key) -> None:
        self._asked_at.pop(key, None)

    def oldest(self, party: str) -> list[tuple[str, int]]:
        """The oldest values from ``party`` the program waits for (none arriving), with the calls made when asked."""
        waits = [(key[1], asked_at) for key, asked_at in self._asked_at.items()
                 if key[0] == party and key in self._box.waiting and not self._box.receiving(key)]
        return waits[:wire.MAX_WAITS]

    def will_not_come(self, party: str, object_ids: list[str], calls: int) -> None:
        """``party``, whose program made ``calls`` calls, says it will never send these values:
        every wait on them ends with an error that says why."""
        for object_id in object_ids:
            key = (party, object_id)
            asked_at = self._asked_at.get(key)
            fingerprint = self._box.waiting.get(key)
            if asked_at is None or fingerprint is None or self._box.receiving(key):
                continue  # not asked about, or arriving after all
            logger.warning("party %r will not send value %s (%s) that this party waits for", party, object_id,
                           fingerprint)
            self._box.deliver(key, Arrived(fingerprint, error=FedError(
                f"party {party!r} will not send value {object_id} ({fingerprint}) that party {self._party!r} "
                f"waits for: its program has made {calls} calls, past the {asked_at} this party had made when it "
                "asked, so it has passed every point where it pushes this value, and no push of it to this party "
                "started (or the one that did failed). Either the parties' programs diverged (a call or "
                "fed.get that only one of them made) or fed lost the push (please report it); look at "
                f"party {party!r}'s log for a failed push")))
