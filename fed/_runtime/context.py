"""The per-process runtime of one ``fed.init``: call ids, proxies, and moving FedObjects."""

from __future__ import annotations

import _thread
import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import ray

from fed._config import FedConfig
from fed._runtime.audit import AuditLog
from fed._runtime.call_log import CallLog
from fed._runtime.objects import FedObject
from fed._runtime.send_watch import SendWatcher, failure_of

logger = logging.getLogger("fed")

_sessions = itertools.count(1)


class Runtime:
    """State of this party for one job: started by ``fed.init``, ended by ``fed.shutdown``."""

    def __init__(self, config: FedConfig, sender: Any, receiver: Any, owns_ray: bool,
                 sending_failure_handler: Callable[[BaseException], None] | None = None) -> None:
        self.config = config
        self.party = config.party
        self.sender = sender
        self.receiver = receiver
        self.owns_ray = owns_ray
        self.session = next(_sessions)
        self._lock = threading.Lock()
        self._next_call_id = 0
        self._failure_handler = sending_failure_handler
        self._sends = SendWatcher(self._send_failed)
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

    def share_calls(self) -> None:
        """Hand the calls made since last time to the receiver, which compares them with the peers'."""
        with self._lock:
            start, digests, fingerprints = self.calls.take_new()
        if digests:
            self.receiver.record_calls.remote(start, digests, fingerprints)

    def check_party(self, party: str) -> None:
        """A call names one of the configured parties."""
        if party not in self.config.addresses:
            raise ValueError(f"unknown party {party!r}; the parties are {sorted(self.config.addresses)}")

    def check_session(self, obj: FedObject | Any) -> None:
        """A FedObject or actor handle from an earlier ``fed.init`` is an error, not a stale value."""
        if obj.session != self.session:
            raise ValueError(f"{obj!r} comes from an earlier fed.init; values and actors do not "
                             "outlive fed.shutdown, make them again in this job")

    def push(self, obj: FedObject, dst: str) -> None:
        """Send ``obj`` (owned here) to ``dst`` unless it was sent there already."""
        self.check_session(obj)
        with self._lock:
            if dst in obj._sent_to:
                return
            obj._sent_to.add(dst)
        started = time.time()
        push = self.sender.send(dst, obj.object_id, obj.fingerprint, obj._ref)
        push.add_done_callback(lambda done: self._audit_push(obj, dst, started, done))
        self._sends.add(push)

    def _audit_push(self, obj: FedObject, dst: str, started: float, push: concurrent.futures.Future) -> None:
        entry = {"object_id": obj.object_id, "fingerprint": obj.fingerprint, "destination": dst, "started": started}
        error = failure_of(push)
        if error is None:
            sent = push.result()
            self.audit.record(**entry, nbytes=sent.nbytes, outcome="error" if sent.codec == "error" else "sent")
        else:
            self.audit.record(**entry, outcome="failed", reason=str(error) or type(error).__name__)

    def _send_failed(self, exc: BaseException) -> None:
        logger.error("fed: %s", exc)
        if self._failure_handler is not None:
            self._failure_handler(exc)
        if self.config.comm.exit_on_sending_failure and not self.closing:
            logger.error("fed: stopping this party because exit_on_sending_failure is set")
            self.record_failure(exc)
            _thread.interrupt_main()

    def record_failure(self, exc: BaseException) -> None:
        """Remember the first error that ends this party's program (told to peers at shutdown)."""
        if self.failure is None:
            self.failure = exc

    def say_goodbye(self, failure: BaseException | None, timeout: float = 5.0) -> None:
        """Tell every peer this party sends nothing more: it ``finished``, or ``aborted`` with ``failure``."""
        if failure is None:
            byes = [self.sender.bye(p, "finished") for p in self.config.peers]
        else:
            cause = f"{type(failure).__name__}: {failure}" if self.config.comm.expose_error_trace else None
            byes = [self.sender.bye(p, "aborted", type(failure).__name__, cause) for p in self.config.peers]
        concurrent.futures.wait(byes, timeout)

    def receive(self, obj: FedObject) -> Any:
        """The Ray ObjectRef of a value another party pushes here (asked for once per object)."""
        self.check_session(obj)
        with self._lock:
            if obj._received is None:
                obj._received = self.receiver.get.remote(obj.owner, obj.object_id, obj.fingerprint)
            return obj._received

    def resolve(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Arguments of a call at this party: FedObjects become Ray ObjectRefs."""
        def to_ref(obj: FedObject) -> Any:
            if obj.owner == self.party:
                self.check_session(obj)
                return obj._ref
            return self.receive(obj)
        return _map_fed_objects(args, to_ref), _map_fed_objects(kwargs, to_ref)

    def push_args(self, args: tuple, kwargs: dict, dst: str) -> None:
        """Before a call at ``dst``: push every argument this party owns."""
        def push(obj: FedObject) -> FedObject:
            if obj.owner == self.party:
                self.push(obj, dst)
            else:
                self.check_session(obj)
            return obj
        _map_fed_objects((args, kwargs), push)

    def drain(self, timeout: float, expect_values: bool = True) -> list[str]:
        """Wait up to ``timeout`` s for pushes in flight (and values this party waits for, if
        ``expect_values``); describe what is left."""
        problems = []
        left, failures = self._sends.drain(timeout)
        if left:
            problems.append(f"{left} push(es) still in flight after {timeout:.0f} s")
        if failures:
            problems.append(f"{len(failures)} push(es) failed, the first: {failures[0]}")
        if expect_values and not failures:  # after a failed push, peers are not worth waiting for
            # The receiver knows what this party still waits for; the driver keeps no ObjectRef
            # of received values, which would pin each one in the object store until shutdown.
            waiting = ray.get(self.receiver.settle.remote(timeout))
            if waiting:
                problems.append(f"{waiting} value(s) this party waits for never arrived")
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
