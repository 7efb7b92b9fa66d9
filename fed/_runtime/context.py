"""The per-process runtime of one ``fed.init``: call ids, proxies, and moving FedObjects."""

from __future__ import annotations

import _thread
import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any

import ray

from fed._config import FedConfig
from fed._runtime.base import RuntimeBase, map_fed_objects
from fed._runtime.objects import FedObject
from fed._runtime.send_watch import SendWatcher, failure_of
from fed._transport import metrics

logger = logging.getLogger("fed")

_SHARE_CALLS_AFTER_S = 1.0
SHUTDOWN_WAIT_S = 60.0
_ABORT_WAIT_S = 5.0


class Runtime(RuntimeBase):
    """One party of a multi-controller job: its sender and receiver, and the values it moves."""

    def __init__(self, config: FedConfig, sender: Any, receiver: Any, owns_ray: bool,
                 sending_failure_handler: Callable[[BaseException], None] | None = None) -> None:
        super().__init__(config, owns_ray)
        self.sender = sender
        self.receiver = receiver
        self._failure_handler = sending_failure_handler
        self._sends = SendWatcher(self._send_failed)
        # Pushes started and failed since the receiver was last told (see ``fed._transport.pushed``).
        self._started: list[tuple[str, str]] = []
        self._failed: list[tuple[str, str]] = []

    def runs_here(self, party: str) -> bool:
        return party == self.party

    def share_calls(self) -> None:
        """Hand the calls made and the pushes started or failed since last time to the receiver,
        which compares the calls with the peers' and tells them which values will not come."""
        with self._lock:
            start, digests, fingerprints = self.calls.take_new()
            started, self._started = self._started, []
            failed, self._failed = self._failed, []
        if digests or started or failed:
            self.receiver.record_calls.remote(start, digests, fingerprints, started, failed)

    def push(self, obj: FedObject, dst: str) -> None:
        """Send ``obj`` (owned here) to ``dst`` unless it was sent there already."""
        self.check_session(obj)
        with self._lock:
            if dst in obj._sent_to:
                return
            obj._sent_to.add(dst)
            self._started.append((dst, obj.object_id))
        self.push_ref(dst, obj.object_id, obj.fingerprint, obj._ref)

    def push_ref(self, dst: str, object_id: str, fingerprint: str, ref: Any) -> concurrent.futures.Future:
        """Push the value of Ray ObjectRef ``ref`` to ``dst`` under ``object_id``: watched (failures
        reach the handler, ``fed.shutdown`` waits for it) and audited."""
        started = time.time()
        push = self.sender.send(dst, object_id, fingerprint, ref)
        push.add_done_callback(lambda done: self._audit_push(object_id, fingerprint, dst, started, done))
        self._sends.add(push)
        return push

    def _audit_push(self, object_id: str, fingerprint: str, dst: str, started: float,
                    push: concurrent.futures.Future) -> None:
        entry = {"object_id": object_id, "fingerprint": fingerprint, "destination": dst, "started": started}
        error = failure_of(push)
        if error is None:
            sent = push.result()
            self.audit.record(**entry, nbytes=sent.nbytes, outcome="error" if sent.error else "sent")
        else:
            with self._lock:
                self._failed.append((dst, object_id))
            self.audit.record(**entry, outcome="failed", reason=str(error) or type(error).__name__)

    def _send_failed(self, exc: BaseException) -> None:
        logger.error("fed: %s", exc)
        if self._failure_handler is not None:
            self._failure_handler(exc)
        if self.config.comm.exit_on_sending_failure and not self.closing:
            logger.error("fed: stopping this party because exit_on_sending_failure is set")
            self.record_failure(exc)
            _thread.interrupt_main()

    def say_goodbye(self, failure: BaseException | None, timeout: float = 5.0) -> None:
        """Tell every peer this party sends nothing more: it ``finished``, or ``aborted`` with ``failure``."""
        if failure is None:
            byes = [self.sender.bye(p, "finished") for p in self.config.peers]
        else:
            cause = f"{type(failure).__name__}: {failure}" if self.config.comm.expose_error_trace else None
            byes = [self.sender.bye(p, "aborted", type(failure).__name__, cause) for p in self.config.peers]
        concurrent.futures.wait(byes, timeout)

    def receive(self, objects: list[FedObject]) -> None:
        """Ask the receiver for the values of ``objects`` (other parties' values this party has not
        asked for yet): one Ray call for them all, whose returns become their ``_received`` refs.

        One call per consuming ``.remote()`` rather than per value: a job with 10,000 values in
        flight would otherwise keep 10,000 actor calls pending in the receiver, which costs about
        50 KB each there, and past its ``max_concurrency`` the calls queue in Ray while values
        they wait for are refused for lack of room. The refs of one call resolve together, when
        all its values have arrived (the call needs them all anyway); if one of them is an error,
        every ref of that call raises it.
        """
        for obj in objects:
            self.check_session(obj)
        with self._lock:
            new = list({id(obj): obj for obj in objects if obj._received is None}.values())
            asked_at = len(self.calls)  # the owner will have pushed them before its next call
            wanted = [(obj.owner, obj.object_id, obj.fingerprint, asked_at) for obj in new]
            if len(new) == 1:
                new[0]._received = self.receiver.get.remote(*wanted[0])
            elif new:
                refs = self.receiver.get_many.options(num_returns=len(new)).remote(wanted)
                for obj, ref in zip(new, refs):
                    obj._received = ref

    def resolve(self, args: tuple, kwargs: dict, party: str) -> tuple[tuple, dict]:
        """Arguments of a call at this party: FedObjects become Ray ObjectRefs (received ones too)."""
        incoming: list[FedObject] = []

        def collect(obj: FedObject) -> FedObject:
            if obj.owner != self.party:
                incoming.append(obj)
            return obj
        map_fed_objects((args, kwargs), collect)
        self.receive(incoming)

        def to_ref(obj: FedObject) -> Any:
            if obj.owner == self.party:
                self.check_session(obj)
                return obj._ref
            return obj._received
        return map_fed_objects(args, to_ref), map_fed_objects(kwargs, to_ref)

    def push_args(self, args: tuple, kwargs: dict, dst: str) -> None:
        """Before a call at ``dst``: push every argument this party owns."""
        def push(obj: FedObject) -> FedObject:
            if obj.owner == self.party:
                self.push(obj, dst)
            else:
                self.check_session(obj)
            return obj
        map_fed_objects((args, kwargs), push)

    def get(self, objects: list[FedObject]) -> list[Any]:
        """The owner pushes each value to every party that has not received it; the others wait for it."""
        for obj in objects:
            self.check_session(obj)
            if obj.owner == self.party:
                for peer in self.config.peers:
                    self.push(obj, peer)
        self.receive([obj for obj in objects if obj.owner != self.party])
        refs = [obj._ref if obj.owner == self.party else obj._received for obj in objects]
        while True:
            try:
                return ray.get(refs, timeout=_SHARE_CALLS_AFTER_S)
            except ray.exceptions.GetTimeoutError:
                # Blocked: let the receiver compare this party's calls with its peers', and tell
                # them which of their waits will not come.
                self.share_calls()

    def stats(self) -> dict[str, Any]:
        """``fed.stats()``: the sender's and the receiver's counters, per peer."""
        sent = self.sender.stats().result(10)
        received = ray.get(self.receiver.stats.remote(), timeout=10)
        return metrics.combine(self.config.job_name, self.party, self.config.peers, sent, received)

    def stop(self, failure: BaseException | None, push_wait: float | None = None) -> None:
        """Wait for pushes (``push_wait`` s, by default 60; 5 after a failure), tell the peers, stop
        the sender and receiver (which ends the pushes still in flight)."""
        if push_wait is None:
            push_wait = SHUTDOWN_WAIT_S if failure is None else _ABORT_WAIT_S
        try:
            for problem in self.drain(push_wait, expect_values=failure is None):
                logger.error("fed.shutdown: %s", problem)
            self.say_goodbye(failure)
            self.sender.stop(timeout=10)
            ray.get(self.receiver.stop.remote(), timeout=10)
        except Exception as exc:  # noqa: BLE001 - shutdown must finish
            logger.error("fed.shutdown: stopping the proxies failed: %s", exc)
        finally:
            try:
                ray.kill(self.receiver)
            except Exception:  # noqa: BLE001 - already gone
                pass

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


_current: RuntimeBase | None = None


def current() -> RuntimeBase:
    """The active runtime; ``fed.init`` must have been called."""
    if _current is None:
        raise RuntimeError("fed is not initialised in this process: call fed.init(...) first")
    return _current


def active() -> RuntimeBase | None:
    """The active runtime or None."""
    return _current


def set_current(runtime: RuntimeBase | None) -> None:
    """Install (or clear) the process's runtime."""
    global _current
    _current = runtime
