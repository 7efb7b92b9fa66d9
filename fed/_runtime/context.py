"""The per-process runtime of one ``fed.init``: call ids, proxies, and moving FedObjects."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import ray

from fed._config import FedConfig
from fed._runtime.objects import FedObject

logger = logging.getLogger("fed")

_PRUNE_EVERY = 1000


class Runtime:
    """State of this party for one job: started by ``fed.init``, ended by ``fed.shutdown``."""

    def __init__(self, config: FedConfig, sender: Any, receiver: Any, owns_ray: bool) -> None:
        self.config = config
        self.party = config.party
        self.sender = sender
        self.receiver = receiver
        self.owns_ray = owns_ray
        self._lock = threading.Lock()
        self._next_call_id = 0
        self._pending_sends: list[Any] = []
        self._pending_receives: list[Any] = []

    def next_call_id(self) -> int:
        """The id of the next ``.remote()`` call; advances the same way at every party."""
        with self._lock:
            self._next_call_id += 1
            return self._next_call_id

    def check_party(self, party: str) -> None:
        """A call names one of the configured parties."""
        if party not in self.config.addresses:
            raise ValueError(f"unknown party {party!r}; the parties are {sorted(self.config.addresses)}")

    def push(self, obj: FedObject, dst: str) -> None:
        """Send ``obj`` (owned here) to ``dst`` unless it was sent there already."""
        with self._lock:
            if dst in obj._sent_to:
                return
            obj._sent_to.add(dst)
        ref = self.sender.send.remote(dst, obj.object_id, obj.fingerprint, [obj._ref])
        self._track(self._pending_sends, ref)

    def receive(self, obj: FedObject) -> Any:
        """The Ray ObjectRef of a value another party pushes here (asked for once per object)."""
        with self._lock:
            ref = obj._received
            if ref is None:
                ref = obj._received = self.receiver.get.remote(obj.owner, obj.object_id, obj.fingerprint)
                new = True
            else:
                new = False
        if new:
            self._track(self._pending_receives, ref)
        return ref

    def _track(self, pending: list[Any], ref: Any) -> None:
        with self._lock:
            pending.append(ref)
            if len(pending) % _PRUNE_EVERY == 0:
                _, pending[:] = ray.wait(pending, num_returns=len(pending), timeout=0)

    def resolve(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Arguments of a call at this party: FedObjects become Ray ObjectRefs."""
        def to_ref(obj: FedObject) -> Any:
            return obj._ref if obj.owner == self.party else self.receive(obj)
        return _map_fed_objects(args, to_ref), _map_fed_objects(kwargs, to_ref)

    def push_args(self, args: tuple, kwargs: dict, dst: str) -> None:
        """Before a call at ``dst``: push every argument this party owns."""
        def push(obj: FedObject) -> FedObject:
            if obj.owner == self.party:
                self.push(obj, dst)
            return obj
        _map_fed_objects((args, kwargs), push)

    def drain(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` s for pending pushes and receives; describe what failed or is left."""
        with self._lock:
            sends, receives = list(self._pending_sends), list(self._pending_receives)
            self._pending_sends.clear()
            self._pending_receives.clear()
        problems = []
        for name, refs in (("push", sends), ("receive", receives)):
            if not refs:
                continue
            done, left = ray.wait(refs, num_returns=len(refs), timeout=timeout)
            if left:
                problems.append(f"{len(left)} {name}(es) still pending after {timeout:.0f} s")
            if name == "push":
                for ref in done:
                    try:
                        ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - reported, shutdown goes on
                        problems.append(f"a push failed: {exc}")
        return problems


def _map_fed_objects(value: Any, fn: Callable[[FedObject], Any]) -> Any:
    """Apply ``fn`` to every FedObject inside lists, tuples and dicts, rebuilding the containers."""
    if isinstance(value, FedObject):
        return fn(value)
    if isinstance(value, list):
        return [_map_fed_objects(v, fn) for v in value]
    if isinstance(value, tuple):
        items = [_map_fed_objects(v, fn) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {k: _map_fed_objects(v, fn) for k, v in value.items()}
    return value


_current: Runtime | None = None


def current() -> Runtime:
    """The active runtime; ``fed.init`` must have been called."""
    if _current is None:
        raise RuntimeError("fed is not initialised in this process: call fed.init(...) first")
    return _current


def active() -> Runtime | None:
    """The active runtime or None."""
    return _current


def set_current(runtime: Runtime | None) -> None:
    """Install (or clear) the process's runtime."""
    global _current
    _current = runtime
