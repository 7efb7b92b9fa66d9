"""Values from peers kept in the driver, and calls held until those values arrive.

When the receiver runs in the driver process (no ``recv_resource_label``), a value from a peer
arrives here as a Python object. ``fed.get`` reads it as it is, without Ray; a task that takes it
gets it by value if it came in a small payload, else ``ray.put`` once (``Received.arg``). A call
whose values from peers have not arrived yet cannot be given to Ray, which has no public API for
an ObjectRef filled in later; ``.remote()`` returns at once all the same and the call is held here
(``Held``), given to Ray in the program's order as its values arrive. A later call that needs a held one
(takes its results, or calls its actor: Ray runs an actor's calls in the order they were
submitted) is held behind it; every other call goes to Ray at once.

Holding in the program's order cannot deadlock: a held call waits only for values of earlier calls
at other parties, and those wait only for values of calls earlier still.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import ray

from fed._exceptions import FedError


def _raise(error: BaseException) -> None:
    raise error


# A value that came in a payload up to this size is passed to a task by value: Ray inlines
# arguments under 100 KB (``max_direct_call_object_size``) in the call itself.
INLINE_ARG_BYTES = 64 * 1024

_failed: Any = None  # the Ray task that raises its argument: an ObjectRef holding an error


def error_ref(error: BaseException) -> ray.ObjectRef:
    """An ObjectRef whose ``ray.get`` (or a task taking it) raises ``error``, as a failed task's does."""
    global _failed
    if _failed is None:
        _failed = ray.remote(num_cpus=0, max_retries=0)(_raise)
    return _failed.remote(error)


class Received:
    """A value from a peer that this party asked for once: waited for in the driver (``future``,
    resolved by the receiver), then kept once, as the value or, once a task takes it, as the Ray
    object it was put in."""

    __slots__ = ("_future", "_ref", "_lock")

    def __init__(self, future: concurrent.futures.Future) -> None:
        self._future: concurrent.futures.Future | None = future
        self._ref: ray.ObjectRef | None = None
        self._lock = threading.Lock()

    @property
    def future(self) -> concurrent.futures.Future | None:
        """What to wait on while the value has not arrived; None once it was put in Ray."""
        return self._future

    def done(self) -> bool:
        future = self._future
        return future is None or future.done()

    def value(self) -> Any:
        """The value (the receiver's error raises); call once ``done``."""
        with self._lock:
            ref, future = self._ref, self._future
        return future.result()[0] if future is not None else ray.get(ref)

    def cheap(self) -> bool:
        """Whether making it a task's argument is quick (no large ``ray.put``). Call once ``done``."""
        future = self._future
        return future is None or future.exception() is not None or future.result()[1] <= INLINE_ARG_BYTES

    def arg(self) -> Any:
        """The value as a task's argument: itself if it came in a small payload (Ray copies small
        arguments into the call, which costs less than an object in the store), else ``ref``.
        Call once ``done``."""
        future = self._future
        if future is not None and future.exception() is None:
            value, nbytes = future.result()
            if nbytes <= INLINE_ARG_BYTES:
                return value
        return self.ref()

    def ref(self) -> ray.ObjectRef:
        """The value as a Ray object, put once; an error as an ObjectRef that raises it. Call once ``done``."""
        with self._lock:
            if self._ref is None:
                error = self._future.exception()
                if error is not None:
                    self._ref = error_ref(error)
                else:
                    self._ref = ray.put(self._future.result()[0])
                    self._future = None  # the value is kept once: in Ray from now on
            return self._ref


class Held:
    """The calls held until their values from peers arrive, given to Ray in the order they were held.

    No thread waits for them: whoever completes the wait of the oldest held call gives it (and the
    ones after it that can go) to Ray, which is usually the receiver's event loop as the value
    arrives; a call whose values are large (``ray.put`` copies them) is given to Ray from a helper
    thread instead, so that the loop keeps serving peers.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[tuple[list, Callable[[], bool], Callable[[], None],
                                             concurrent.futures.Future]] = collections.deque()
        self._lock = threading.Lock()
        self._draining = False
        self._again = False
        self._stopped = False
        self._armed: concurrent.futures.Future | None = None  # the wait a callback is on
        self._helper: concurrent.futures.ThreadPoolExecutor | None = None
        self._helper_thread: threading.Thread | None = None

    def hold(self, waits: list[concurrent.futures.Future], cheap: Callable[[], bool],
             submit: Callable[[], None]) -> concurrent.futures.Future:
        """Run ``submit`` once every future in ``waits`` is done and every call held before it has
        been submitted. ``cheap()`` (asked then) says whether ``submit`` is quick enough for the
        receiver's loop. The returned future resolves (to None) after ``submit`` ran; with an error
        only if ``stop`` came first. ``submit`` must not raise."""
        made: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._stopped:
                raise FedError("fed is shutting down: no more calls are given to Ray")
            self._queue.append((waits, cheap, submit, made))
        self._drain()
        return made

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)

    def _drain(self, _: Any = None) -> None:
        """Give Ray the held calls that can go now, oldest first; one thread at a time does it, and
        a call of this while another thread drains makes that one look again before it stops."""
        with self._lock:
            if self._stopped:
                return
            if self._draining:
                self._again = True
                return
            self._draining = True
        arms = []
        while True:
            to_helper, arm = self._submit_ready()
            if arm is not None:
                arms.append(arm)
            with self._lock:
                if self._again and not to_helper:
                    self._again = False
                    continue
                self._draining = False
                break
        for arm in arms:
            arm.add_done_callback(self._drain)  # runs at once if it completed meanwhile
        if to_helper:
            self._helper_pool().submit(self._drain)

    def _submit_ready(self) -> tuple[bool, concurrent.futures.Future | None]:
        """Submit held calls while the oldest can go. Returns whether the oldest is for the helper
        thread, and the future to wait on for it (None: nothing held, or a callback is on it)."""
        while True:
            with self._lock:
                if not self._queue or self._stopped:
                    return False, None
                waits, cheap, submit, made = self._queue[0]
                arm = next((f for f in waits if not f.done()), None)
                if arm is not None:
                    if arm is self._armed:
                        return False, None
                    self._armed = arm
                    return False, arm
            if not cheap() and threading.current_thread() is not self._helper_thread:
                return True, None
            submit()
            with self._lock:
                if self._queue and self._queue[0][3] is made:  # unless stop cleared the queue meanwhile
                    self._queue.popleft()
            _settle(made, None)

    def _helper_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._helper is None:
                self._helper = concurrent.futures.ThreadPoolExecutor(1, "fed-held-calls", initializer=self._named)
            return self._helper

    def _named(self) -> None:
        self._helper_thread = threading.current_thread()

    def stop(self, timeout: float) -> int:
        """Give no more calls to Ray; the calls still held fail. Returns how many there were."""
        with self._lock:
            self._stopped = True
            left = list(self._queue)
            self._queue.clear()
            helper = self._helper
        if helper is not None:
            helper.shutdown(wait=False)
        never = FedError("fed.shutdown came before this call's values from other parties arrived: it never ran")
        for *_, made in left:
            _settle(made, never)
        return len(left)


def _settle(made: concurrent.futures.Future, error: BaseException | None) -> None:
    """Resolve ``made`` unless the other thread did (``stop`` racing the last submission)."""
    try:
        if error is None:
            made.set_result(None)
        else:
            made.set_exception(error)
    except concurrent.futures.InvalidStateError:
        pass
