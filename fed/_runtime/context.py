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
from fed._runtime import handoff
from fed._runtime.base import RuntimeBase, fed_objects_in, map_fed_objects
from fed._runtime.held import Held, Received, error_ref
from fed._runtime.objects import FedObject
from fed._runtime.send_watch import SendWatcher, failure_of
from fed._transport import metrics
from fed._transport.sender import Ready

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
        self._held = Held()  # calls waiting for values from peers (receiver in the driver)
        self._handoff: Any = None

    def runs_here(self, party: str) -> bool:
        return party == self.party

    def handoff(self) -> Any:
        """The actor that hands out ``fed.send``'s and ``fed.recv``'s ObjectRefs, started on first use."""
        with self._lock:
            if self._handoff is None:
                self._handoff = handoff.start()
            return self._handoff

    def share_calls(self) -> None:
        """Hand the calls made and the pushes started or failed since last time to the receiver,
        which compares the calls with the peers' and tells them which values will not come."""
        with self._lock:
            start, digests, fingerprints = self.calls.take_new()
            started, self._started = self._started, []
            failed, self._failed = self._failed, []
        if digests or started or failed:
            self.receiver.record_calls(start, digests, fingerprints, started, failed)

    def push(self, obj: FedObject, dst: str, value: Ready | None = None) -> None:
        """Send ``obj`` (owned here) to ``dst`` unless it was sent there already: its ``value`` if
        the driver holds it already, else the value of its ref."""
        self.check_session(obj)
        with self._lock:
            if dst in obj._sent_to:
                return
            obj._sent_to.add(dst)
            self._started.append((dst, obj.object_id))
        self.push_ref(dst, obj.object_id, obj.fingerprint, own_ref(obj) if value is None else value)

    def push_ref(self, dst: str, object_id: str, fingerprint: str, ref: Any) -> concurrent.futures.Future:
        """Push the value of Ray ObjectRef ``ref`` to ``dst`` under ``object_id``: watched (failures
        reach the handler, ``fed.shutdown`` waits for it) and audited. ``ref`` may be a ``Later``:
        the value of a held call, pushed once the call is given to Ray."""
        started = time.time()
        if isinstance(ref, Later):
            push: concurrent.futures.Future = concurrent.futures.Future()

            def send_made() -> concurrent.futures.Future:
                ref.made.result()  # raises if the call never ran (fed.shutdown came first)
                return self.sender.send(dst, object_id, fingerprint, ref.obj._ref)
            ref.made.add_done_callback(lambda _: _chain(send_made, push))
        else:
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
        asked for yet). In the driver, each becomes a ``held.Received``. From a receiver actor:
        one Ray call for them all, whose returns become their ``_received`` refs.

        One actor call per consuming ``.remote()`` rather than per value: a job with 10,000 values
        in flight would otherwise keep 10,000 actor calls pending in the receiver, which costs about
        50 KB each there, and past its ``max_concurrency`` the calls queue in Ray while values
        they wait for are refused for lack of room. The refs of one call resolve together, when
        all its values have arrived (the call needs them all anyway); if one of them is an error,
        every ref of that call raises it.
        """
        for obj in objects:
            self.check_session(obj)
        receiver = self.receiver
        with self._lock:
            new = list({id(obj): obj for obj in objects if obj._received is None}.values())
            asked_at = len(self.calls)  # the owner will have pushed them before its next call
            wanted = [(obj.owner, obj.object_id, obj.fingerprint, asked_at) for obj in new]
            if receiver.in_driver:
                for obj, asked in zip(new, wanted):
                    obj._received = Received(receiver.get(*asked))
            elif len(new) == 1:
                new[0]._received = receiver.get_ref(*wanted[0])
            elif new:
                for obj, ref in zip(new, receiver.get_many_refs(wanted)):
                    obj._received = ref

    def ask(self, args: tuple, kwargs: dict) -> None:
        objects = fed_objects_in((args, kwargs))
        for obj in objects:
            if obj.owner == self.party:
                self.check_session(obj)
        self.receive([obj for obj in objects if obj.owner != self.party])

    def submit(self, party: str, call: Callable[[tuple, dict], Any], args: tuple, kwargs: dict, outputs: Any,
               actor: Any = None) -> None:
        """At once when Ray can take the call; else (receiver in the driver) held until the values
        it takes from peers have arrived, behind any held call it depends on (``fed._runtime.held``)."""
        if not self.receiver.in_driver:
            return super().submit(party, call, args, kwargs, outputs, actor)
        objects = fed_objects_in((args, kwargs))
        received = [obj._received for obj in objects if obj.owner != self.party]
        waits = [r.future for r in received if not r.done()]
        behind = any(obj._pending is not None and not obj._pending.done() for obj in objects
                     if obj.owner == self.party) or (actor is not None and actor._made is not None
                                                     and not actor._made.done())
        if not waits and not behind:
            return super().submit(party, call, args, kwargs, outputs, actor)
        made = self._held.hold(waits, lambda: all(r.cheap() for r in received),
                               lambda: self._submit_held(party, call, args, kwargs, outputs))
        for obj in outputs.objects:
            obj._pending = made
        if actor is not None:
            actor._made = made

    def _submit_held(self, party: str, call: Callable[[tuple, dict], Any], args: tuple, kwargs: dict,
                     outputs: Any) -> None:
        """A held call, now that its values are here. A failure to submit it becomes its results' error."""
        try:
            super().submit(party, call, args, kwargs, outputs)
        except Exception as exc:  # noqa: BLE001 - the program is elsewhere: its results carry the error
            logger.error("fed: a held call could not be given to Ray: %s", exc)
            for obj in outputs.objects:
                obj._ref = error_ref(exc)

    def resolve(self, args: tuple, kwargs: dict, party: str) -> tuple[tuple, dict]:
        """Arguments of a call at this party: FedObjects become Ray ObjectRefs (received ones too;
        in the driver, those are put in Ray here, once)."""
        def to_ref(obj: FedObject) -> Any:
            if obj.owner == self.party:
                return obj._ref
            received = obj._received
            return received if isinstance(received, ray.ObjectRef) else received.ref()

        def to_arg(value: Any) -> Any:  # a value passed by itself (not nested): small ones go by value
            if isinstance(value, FedObject) and value.owner != self.party and isinstance(value._received, Received):
                return value._received.arg()
            return map_fed_objects(value, to_ref)
        return tuple(to_arg(a) for a in args), {k: to_arg(v) for k, v in kwargs.items()}

    def push_args(self, args: tuple, kwargs: dict, dst: str) -> None:
        """Before a call at ``dst``: push every argument this party owns."""
        for obj in fed_objects_in((args, kwargs)):
            if obj.owner == self.party:
                self.push(obj, dst)
            else:
                self.check_session(obj)

    def get(self, objects: list[FedObject]) -> list[Any]:
        """The owner pushes each value to every party that has not received it; the others wait for it."""
        for obj in objects:
            self.check_session(obj)
        self.receive([obj for obj in objects if obj.owner != self.party])
        read = self._push_to_all([obj for obj in objects if obj.owner == self.party])
        held = [obj._pending for obj in objects if obj._pending is not None]
        arriving = [obj._received.future for obj in objects
                    if obj.owner != self.party and not isinstance(obj._received, ray.ObjectRef)]
        self._wait_for([f for f in held + arriving if f is not None])
        refs = {i: obj._ref if obj.owner == self.party else obj._received for i, obj in enumerate(objects)
                if id(obj) not in read and (obj.owner == self.party or isinstance(obj._received, ray.ObjectRef))}
        got = dict(zip(refs, self._ray_get(list(refs.values()))))
        got.update((i, read[id(obj)]) for i, obj in enumerate(objects) if id(obj) in read)
        return [got[i] if i in got else obj._received.value() for i, obj in enumerate(objects)]

    def _push_to_all(self, own: list[FedObject]) -> dict[int, Any]:
        """Push values this party owns to every peer that has not received them. A driver sender is
        handed the values once this driver has them (it reads them anyway, for ``fed.get``), which
        saves the sender reading each from Ray again; a value that failed goes as its ref, whose
        error the sender reports to the peers. Returns the values read, by ``id`` of their FedObject."""
        peers = self.config.peers
        unsent = [obj for obj in own if any(peer not in obj._sent_to for peer in peers)]
        if not unsent:
            return {}
        values: list[Any] = []
        if self.sender.takes_values:
            self._wait_for([obj._pending for obj in unsent if obj._pending is not None])
            try:
                values = self._ray_get([obj._ref for obj in unsent])
            except Exception:
                values = []
        for i, obj in enumerate(unsent):
            for peer in peers:
                self.push(obj, peer, Ready(values[i]) if values else None)
        return {id(obj): value for obj, value in zip(unsent, values)}

    def _ray_get(self, refs: list[Any]) -> list[Any]:
        """``ray.get``, sharing this party's calls with the receiver every second while blocked."""
        while True:
            try:
                return ray.get(refs, timeout=_SHARE_CALLS_AFTER_S)
            except ray.exceptions.GetTimeoutError:
                self.share_calls()

    def _wait_for(self, futures: list[concurrent.futures.Future]) -> None:
        """Wait for values arriving in the driver and for held calls. While blocked, let the
        receiver compare this party's calls with its peers' and tell them which of their waits
        will not come."""
        while futures:
            _, left = concurrent.futures.wait(futures, timeout=_SHARE_CALLS_AFTER_S)
            if left:
                self.share_calls()
            futures = list(left)

    def stats(self) -> dict[str, Any]:
        """``fed.stats()``: the sender's and the receiver's counters, per peer."""
        sent = self.sender.stats().result(10)
        received = self.receiver.stats().result(10)
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
            never = self._held.stop(timeout=10)
            if never and failure is None:
                logger.error("fed.shutdown: %d call(s) waited for values from other parties that never came; "
                             "they did not run", never)
            self.sender.stop(timeout=10)
            self.receiver.stop(timeout=10)
        except Exception as exc:  # noqa: BLE001 - shutdown must finish
            logger.error("fed.shutdown: stopping the proxies failed: %s", exc)
        finally:
            self.receiver.kill()
            if self._handoff is not None:
                ray.kill(self._handoff)

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
            waiting = self.receiver.settle(timeout).result()
            if waiting:
                problems.append(f"{waiting} value(s) this party waits for never arrived")
        return problems


class Later:
    """The value of ``obj``, a result of a held call: it has an ObjectRef once ``made`` is done."""

    __slots__ = ("obj",)

    def __init__(self, obj: FedObject) -> None:
        self.obj = obj

    @property
    def made(self) -> concurrent.futures.Future:
        return self.obj._pending


def own_ref(obj: FedObject) -> Any:
    """The ObjectRef of a value this party owns, or a ``Later`` while its call is held."""
    pending = obj._pending
    return Later(obj) if pending is not None and not pending.done() else obj._ref


def _chain(start: Callable[[], concurrent.futures.Future], into: concurrent.futures.Future) -> None:
    """Run ``start`` and copy the outcome of the future it returns into ``into``."""
    def copy(done: concurrent.futures.Future) -> None:
        if done.cancelled():
            into.cancel()
        elif done.exception() is not None:
            into.set_exception(done.exception())
        else:
            into.set_result(done.result())
    try:
        start().add_done_callback(copy)
    except BaseException as exc:  # noqa: BLE001 - e.g. the held call never ran: the push fails with why
        into.set_exception(exc)


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
