"""Where the receiver runs: on the driver's transport loop, or as a Ray actor.

In the driver (the default) a value from a peer reaches the program without a Ray call: ``fed.get``
reads it where it arrived, and a task that takes it gets it ``ray.put`` once
(``fed._runtime.held``). The actor is used when ``recv_resource_label`` places the receiver on
another node (the gateway that peers can reach), when ``proxy_max_restarts`` asks Ray to restart
it, and for a user's proxy that serves both ways (``receiver_sender_proxy_cls``: the sender sends
through the receiver's proxy). Both hosts answer the runtime with ``concurrent.futures.Future``s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import ray

from fed._config import FedConfig
from fed._transport import receiver as receiver_module
from fed._transport.loop_thread import LoopThread
from fed._transport.receiver import Receiver
from fed._transport.sender_host import actor_options


def in_actor(config: FedConfig) -> bool:
    """Whether this party's receiver must be a Ray actor rather than run in the driver."""
    comm = config.comm
    return bool(comm.recv_resource_label or comm.proxy_max_restarts
                or (config.plugins is not None and config.plugins.both is not None))


class DriverReceiver:
    """A ``Receiver`` on the driver's transport loop."""

    in_driver = True

    def __init__(self, config: FedConfig, loop: LoopThread) -> None:
        self._loop = loop.acquire()
        try:
            self._receiver: Receiver = self._loop.run(_make(config)).result()
        except BaseException:
            self._loop.release(5)
            raise

    def start(self, timeout: float) -> str:
        """Listen on the party's address (an ``OSError`` if it is taken)."""
        return self._loop.run(self._receiver.start()).result(timeout)

    def get(self, src: str, object_id: str, fingerprint: str, asked_at: int | None = None) -> concurrent.futures.Future:
        """``(value, payload bytes)`` of what ``src`` pushes under ``object_id``, once it arrives
        (or the error that ends the wait). The future is done inside the push that delivers the
        value, so its callbacks (held calls given to Ray) and a thread waiting on it go first."""
        result: concurrent.futures.Future = concurrent.futures.Future()

        def ask() -> None:
            try:
                self._receiver.get_soon(src, object_id, fingerprint, asked_at, lambda got: _settle(result, got))
            except BaseException as exc:  # noqa: BLE001 - the wait's outcome
                _settle(result, exc)
        self._loop.loop.call_soon_threadsafe(ask)
        return result

    def record_calls(self, start: int, digests: bytes, fingerprints: list[str], started: list, failed: list) -> None:
        self._loop.loop.call_soon_threadsafe(self._receiver.record_calls, start, digests, fingerprints, started, failed)

    def stats(self) -> concurrent.futures.Future:
        return self._sync(self._receiver.stats)

    def counts(self) -> concurrent.futures.Future:
        return self._sync(self._receiver.counts)

    def heard_from(self, parties: list[str]) -> concurrent.futures.Future:
        return self._sync(self._receiver.heard_from, parties)

    def peers_started(self, parties: list[str]) -> concurrent.futures.Future:
        return self._sync(self._receiver.peers_started, parties)

    def settle(self, timeout: float) -> concurrent.futures.Future:
        return self._loop.run(self._receiver.settle(timeout))

    def stop(self, timeout: float) -> None:
        """Stop serving (pending waits fail); the loop ends once its last user is done."""
        try:
            self._loop.run(self._receiver.stop()).result(timeout)
        finally:
            self._loop.release(timeout)

    def kill(self) -> None:
        """Nothing to kill: the receiver ends with ``stop``."""

    def _sync(self, method: Any, *args: Any) -> concurrent.futures.Future:
        async def on_loop() -> Any:
            return method(*args)
        return self._loop.run(on_loop())


def _settle(future: concurrent.futures.Future, outcome: Any) -> None:
    """A wait's outcome into the driver's future: a cancelled wait (the receiver stopped) cancels it."""
    if isinstance(outcome, asyncio.CancelledError):
        future.cancel()
    elif isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


async def _make(config: FedConfig) -> Receiver:
    return Receiver(config)  # made on the loop's thread: its link objects belong to that loop


class ActorReceiver:
    """A ``Receiver`` as a Ray actor (``in_actor``); ``actor`` is its handle."""

    in_driver = False

    def __init__(self, config: FedConfig) -> None:
        comm = config.comm
        options = actor_options(comm.recv_resource_label, receiver_module.CONCURRENCY, comm.proxy_max_restarts)
        self.actor = ray.remote(Receiver).options(**options).remote(config)

    def start(self, timeout: float) -> str:
        """Wait for Ray to place the actor and for it to listen (``GetTimeoutError`` after ``timeout``)."""
        return ray.get(self.actor.start.remote(), timeout=timeout)

    def get_ref(self, src: str, object_id: str, fingerprint: str, asked_at: int | None = None) -> ray.ObjectRef:
        """An ObjectRef of the value ``src`` pushes under ``object_id`` (the actor waits for it)."""
        return self.actor.get.remote(src, object_id, fingerprint, asked_at)

    def get_many_refs(self, wanted: list[tuple[str, str, str, int]]) -> list[ray.ObjectRef]:
        """ObjectRefs of several values, asked for in one actor call; they resolve together."""
        return self.actor.get_many.options(num_returns=len(wanted)).remote(wanted)

    def record_calls(self, start: int, digests: bytes, fingerprints: list[str], started: list, failed: list) -> None:
        self.actor.record_calls.remote(start, digests, fingerprints, started, failed)

    def stats(self) -> concurrent.futures.Future:
        return self.actor.stats.remote().future()

    def counts(self) -> concurrent.futures.Future:
        return self.actor.counts.remote().future()

    def heard_from(self, parties: list[str]) -> concurrent.futures.Future:
        return self.actor.heard_from.remote(parties).future()

    def peers_started(self, parties: list[str]) -> concurrent.futures.Future:
        return self.actor.peers_started.remote(parties).future()

    def settle(self, timeout: float) -> concurrent.futures.Future:
        return self.actor.settle.remote(timeout).future()

    def stop(self, timeout: float) -> None:
        ray.get(self.actor.stop.remote(), timeout=timeout)

    def kill(self) -> None:
        try:
            ray.kill(self.actor)
        except Exception:  # noqa: BLE001 - already gone
            pass


def start_receiver(config: FedConfig, loop: LoopThread) -> DriverReceiver | ActorReceiver:
    """The receiver where ``in_actor`` says, not listening yet (``start``)."""
    return ActorReceiver(config) if in_actor(config) else DriverReceiver(config, loop)
