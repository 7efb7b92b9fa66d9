"""What both ways of running a job share: call ids, sessions, party checks, the program's failure.

``context.Runtime`` plays one party of a multi-controller job (one process per party);
``single.SingleRuntime`` plays every party in one process. ``remote`` and the public API talk to
either through the methods below.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from fed._config import FedConfig
from fed._runtime.audit import AuditLog
from fed._runtime.objects import FedObject
from fed._transport.call_log import CallLog

_sessions = itertools.count(1)


class RuntimeBase:
    """State of one ``fed.init`` until ``fed.shutdown``."""

    def __init__(self, config: FedConfig, owns_ray: bool) -> None:
        self.config = config
        self.party = config.party
        self.owns_ray = owns_ray
        self.session = next(_sessions)
        self._lock = threading.Lock()
        self._next_call_id = 0
        self.audit = AuditLog(config.job_name, config.party, config.audit_log_file)
        self.failure: BaseException | None = None  # what ended this party's program, if it failed
        self.calls = CallLog()
        self.closing = False  # fed.shutdown has begun: the main thread is not to be interrupted

    def new_call(self, fingerprint_of: Callable[[int], str]) -> tuple[int, str]:
        """The id and fingerprint of the next ``.remote()`` call; ids advance the same way at every party."""
        with self._lock:
            self._next_call_id += 1
            fingerprint = fingerprint_of(self._next_call_id)
            self.calls.add(fingerprint)
            return self._next_call_id, fingerprint

    def arguments(self, args: tuple, kwargs: dict, party: str) -> tuple[tuple, dict]:
        """The arguments of a call at ``party``, before the call is numbered: if it runs here, the
        values it takes from peers are asked for; else this party pushes what it owns of them.
        Pushes go before the call's number, so that whoever learns of the call (``share_calls``)
        learns of its pushes too (``fed._transport.pushed``)."""
        if self.runs_here(party):
            self.ask(args, kwargs)
        else:
            self.push_args(args, kwargs, party)
        return args, kwargs

    def check_party(self, party: str) -> None:
        """A call names one of the configured parties."""
        if party not in self.config.addresses:
            raise ValueError(f"unknown party {party!r}; the parties are {sorted(self.config.addresses)}")

    def check_session(self, obj: FedObject | Any) -> None:
        """A FedObject or actor handle from an earlier ``fed.init`` is an error, not a stale value."""
        if obj.session != self.session:
            raise ValueError(f"{obj!r} comes from an earlier fed.init; values and actors do not "
                             "outlive fed.shutdown, make them again in this job")

    def record_failure(self, exc: BaseException) -> None:
        """Remember the first error that ends this party's program (told to peers at shutdown)."""
        if self.failure is None:
            self.failure = exc

    # ---- what differs between the two modes ----

    def runs_here(self, party: str) -> bool:
        """Whether this process submits the Ray work of calls at ``party``."""
        raise NotImplementedError

    def placement(self, party: str, options: dict[str, Any], actor: bool = False) -> dict[str, Any]:
        """Ray options for a task (or an ``actor``) of ``party``: the user's ``options``, plus placement."""
        return options

    def ask(self, args: tuple, kwargs: dict) -> None:
        """Before a call run here is numbered: ask for the values it takes from other parties."""

    def submit(self, party: str, call: Callable[[tuple, dict], Any], args: tuple, kwargs: dict, outputs: Any,
               actor: Any = None) -> None:
        """Give a call at ``party`` (run here) to Ray: ``call(args, kwargs)`` with the arguments'
        FedObjects as Ray ObjectRefs; its result fills ``outputs`` (``remote.Outputs``). ``actor``:
        the FedActorHandle the call creates or calls."""
        args, kwargs = self.resolve(args, kwargs, party)
        outputs.fill(call(args, kwargs))

    def resolve(self, args: tuple, kwargs: dict, party: str) -> tuple[tuple, dict]:
        """Arguments of a call at ``party``, run here: FedObjects become Ray ObjectRefs."""
        raise NotImplementedError

    def push_args(self, args: tuple, kwargs: dict, dst: str) -> None:
        """Before a call at ``dst``, run elsewhere: send it the arguments this process owns."""
        raise NotImplementedError

    def get(self, objects: list[FedObject]) -> list[Any]:
        """The values of ``objects`` (Ray's errors propagate)."""
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """What moved between this party and its peers (``fed.stats()``)."""
        raise NotImplementedError

    def stop(self, failure: BaseException | None, push_wait: float | None = None) -> None:
        """End the job (``fed.shutdown``): ``failure`` is the error that ended the program, if any;
        ``push_wait``: how long to wait for pushes in flight (None: as the runtime decides)."""
        raise NotImplementedError


def map_fed_objects(value: Any, fn: Callable[[FedObject], Any]) -> Any:
    """Apply ``fn`` to every FedObject inside lists, tuples and dicts, rebuilding the containers."""
    if isinstance(value, FedObject):
        return fn(value)
    if isinstance(value, list):
        return [map_fed_objects(v, fn) for v in value]
    if isinstance(value, tuple):
        items = [map_fed_objects(v, fn) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {k: map_fed_objects(v, fn) for k, v in value.items()}
    return value


def fed_objects_in(value: Any) -> list[FedObject]:
    """Every FedObject inside ``value``'s lists, tuples and dicts, in order (as ``map_fed_objects``
    visits them; walked without rebuilding anything: it runs several times for every call)."""
    found: list[FedObject] = []
    _collect(value, found)
    return found


def _collect(value: Any, found: list[FedObject]) -> None:
    if isinstance(value, FedObject):
        found.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
