"""Which values this party's program pushed to each peer, as far as its driver has told the receiver.

A peer that waits for one of this party's values asks, on its liveness pings, whether it will
come (``will_not_come``). It will not when this party's program has made more calls than the
waiting party's had when it asked for the value — all parties run the same program, so this one
has passed every point where it would push the value — and no push of it to that peer started,
or the one that did failed. That covers a value fed could not encode, a push fed dropped by a bug
and programs that diverged without a call telling it.

The driver tells the receiver its pushes together with its calls (``Runtime.share_calls``), and
registers a call's pushes before the call itself, so the receiver never knows of a call without
the pushes it made.
"""

from __future__ import annotations

from collections.abc import Iterable

# Pushes remembered per job; past it the receiver stops answering that values will not come
# (it could no longer tell), and waits go on as they would without this check.
LIMIT = 1_000_000


class Pushed:
    """Values pushed to each peer, as the driver reported them (started, or failed after all)."""

    def __init__(self) -> None:
        self._sent: dict[str, set[str]] = {}
        self._count = 0
        self.complete = True  # every push is remembered

    def add(self, started: Iterable[tuple[str, str]], failed: Iterable[tuple[str, str]] = ()) -> None:
        """Pushes ``(peer, object id)`` that started, and pushes that failed (they will not come)."""
        for dst, object_id in started:
            if self._count >= LIMIT:
                self.complete = False
                break
            sent = self._sent.setdefault(dst, set())
            if object_id not in sent:
                sent.add(object_id)
                self._count += 1
        for dst, object_id in failed:
            self._sent.get(dst, set()).discard(object_id)

    def will_not_come(self, dst: str, waits: Iterable[tuple[str, int]], calls: int) -> list[int]:
        """Of the values ``dst`` waits for (object id, how many calls its program had made when it
        asked), the places of those this party will never push to it, given that its program made
        ``calls``."""
        if not self.complete:
            return []
        sent = self._sent.get(dst, set())
        return [i for i, (object_id, asked_at) in enumerate(waits) if calls > asked_at and object_id not in sent]
