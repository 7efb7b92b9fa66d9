"""``FedObject``: the handle of a value that lives at one party."""

from __future__ import annotations

from typing import Any

import ray


class FedObject:
    """A value produced by call ``call_id`` at party ``owner`` (return value number ``index``).

    Only the owner holds the Ray ObjectRef of the value; every other party holds a placeholder
    and receives the value when its owner pushes it (see ``fed.get``).

    >>> y = f.party('bob').remote(x)   # doctest: +SKIP
    >>> y.owner, y.object_id           # doctest: +SKIP
    ('bob', '3:0')
    """

    __slots__ = ("owner", "call_id", "index", "fingerprint", "session", "_ref", "_pending", "_received", "_sent_to")

    def __init__(self, owner: str, call_id: int, index: int, fingerprint: str, ref: Any = None,
                 session: int = 0) -> None:
        self.owner = owner
        self.session = session  # which fed.init made it; values do not outlive fed.shutdown
        self.call_id = call_id
        self.index = index
        self.fingerprint = fingerprint
        self._ref = ref  # the Ray ObjectRef, at the owner only
        self._pending: Any = None  # at the owner, while its call is held (``fed._runtime.held``): done once _ref is set
        self._received: Any = None  # at other parties: the ObjectRef of the value once asked for
        self._sent_to: set[str] = set()  # at the owner: parties this value was pushed to

    @property
    def object_id(self) -> str:
        """``call_id:index``, the same at every party."""
        return f"{self.call_id}:{self.index}"

    def get_party(self) -> str:
        """The party that owns the value (RayFed 0.2's name for ``owner``)."""
        return self.owner

    def get_fed_task_id(self) -> str:
        """``'<call id>#<return index>'`` as RayFed 0.2 names it: the same at every party, and
        again after ``fed.shutdown`` and ``fed.init`` (call ids start over with each job)."""
        return f"{self.call_id}#{self.index}"

    def get_ray_object_ref(self) -> Any:
        """The Ray ObjectRef of the value at this party: the owner's (once its call was given to
        Ray, which this waits for), or once received the one it was put in (None before)."""
        if self._pending is not None:
            self._pending.result()
        if self._ref is not None:
            return self._ref
        received = self._received
        if received is None or isinstance(received, ray.ObjectRef):
            return received
        return received.ref() if received.done() else None

    def __repr__(self) -> str:
        return f"FedObject(owner={self.owner!r}, object_id={self.object_id!r}, call={self.fingerprint!r})"

    def __reduce__(self):
        raise TypeError(
            "a FedObject cannot be pickled or returned from a task; pass it as an argument to "
            ".remote() (fed moves its value) or read it with fed.get()"
        )
