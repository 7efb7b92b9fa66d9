"""Where the sender runs: on an event loop thread of the driver, or as a Ray actor on a labelled node.

Both hosts run the same ``Sender`` and answer with ``concurrent.futures.Future``s, so the runtime
does not care which one it has. The driver thread saves two Ray hops per push (the actor call and
the actor fetching the value from the driver); the actor is used when ``send_resource_label``
places the sender on another node, such as the gateway that can reach the peers.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import ray

from fed._config import FedConfig
from fed._transport.loop_thread import LoopThread
from fed._transport.sender import Sender


class ThreadSender:
    """A ``Sender`` on the driver's transport loop (``LoopThread``), shared with an in-driver receiver."""

    takes_values = True  # ``send`` may be given a ``Ready`` value instead of a ref

    def __init__(self, config: FedConfig, loop: LoopThread | None = None) -> None:
        self._loop = (loop or LoopThread("fed-sender")).acquire()
        self._sender: Sender = self._run(_make_sender(config)).result()

    def _run(self, coro) -> concurrent.futures.Future:
        return self._loop.run(coro)

    def send(self, dst: str, object_id: str, fingerprint: str, ref: Any) -> concurrent.futures.Future:
        """Push the value of ``ref`` once it is ready; the future holds the bytes sent or the error."""
        return self._run(self._sender.send(dst, object_id, fingerprint, [ref]))

    def ping(self, dst: str) -> concurrent.futures.Future:
        """Wait until ``dst`` answers."""
        return self._run(self._sender.ping(dst))

    def bye(self, dst: str, kind: str, error_type: str = "", cause: str | None = None) -> concurrent.futures.Future:
        """Tell ``dst`` this party sends nothing more."""
        return self._run(self._sender.bye(dst, kind, error_type, cause))

    def stats(self) -> concurrent.futures.Future:
        """What was pushed, per peer."""
        return self._run(self._sender.stats())

    def stop(self, timeout: float) -> None:
        """Close the channels; the loop ends once its last user is done."""
        try:
            self._run(self._sender.stop()).result(timeout)
        finally:
            self._loop.release(timeout)


async def _make_sender(config: FedConfig) -> Sender:
    return Sender(config)  # made on the loop's thread: gRPC aio objects belong to their loop


class ActorSender:
    """A ``Sender`` as a Ray actor, placed by ``send_resource_label``."""

    takes_values = False  # a value would be copied to the actor: it fetches it by ref instead

    def __init__(self, config: FedConfig) -> None:
        comm = config.comm
        self._actor = ray.remote(Sender).options(
            **actor_options(comm.send_resource_label, comm.max_concurrency, comm.proxy_max_restarts)).remote(config)

    def send(self, dst: str, object_id: str, fingerprint: str, ref: Any) -> concurrent.futures.Future:
        """Push the value of ``ref`` from the actor; the future holds the bytes sent or the error."""
        return self._actor.send.remote(dst, object_id, fingerprint, [ref]).future()

    def ping(self, dst: str) -> concurrent.futures.Future:
        """Wait until ``dst`` answers."""
        return self._actor.ping.remote(dst).future()

    def bye(self, dst: str, kind: str, error_type: str = "", cause: str | None = None) -> concurrent.futures.Future:
        """Tell ``dst`` this party sends nothing more."""
        return self._actor.bye.remote(dst, kind, error_type, cause).future()

    def stats(self) -> concurrent.futures.Future:
        """What was pushed, per peer."""
        return self._actor.stats.remote().future()

    def ready(self) -> ray.ObjectRef:
        """Resolves once the actor runs (Ray placed it)."""
        return self._actor.stats.remote()

    def stop(self, timeout: float) -> None:
        """Close the channels and kill the actor."""
        try:
            ray.get(self._actor.stop.remote(), timeout=timeout)
        finally:
            ray.kill(self._actor)


def actor_options(resources: Any, max_concurrency: int, max_restarts: int | None = None) -> dict[str, Any]:
    """Ray options for a proxy actor (sender or receiver): no CPU, optional placement resources,
    and how often Ray restarts it when its process dies (``proxy_max_restarts``; -1: always)."""
    options: dict[str, Any] = {"num_cpus": 0, "max_concurrency": max_concurrency}
    if max_restarts:
        options["max_restarts"] = max_restarts
    if resources:
        options["resources"] = dict(resources)
    return options


def start_sender(config: FedConfig, loop: LoopThread | None = None) -> ThreadSender | ActorSender:
    """The actor when a resource label places the sender, else the driver's transport loop."""
    return ActorSender(config) if config.comm.send_resource_label else ThreadSender(config, loop)
