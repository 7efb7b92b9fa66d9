"""A party's transport for one job: its receiver and sender started, and its peers present.

The one place ``fed.init`` asks for a party's transport. The receiver runs as ``receiver_host``
decides, the sender as ``sender_host`` does (in the driver, both on one event loop thread); both
speak over the job's link (``link.LINKS``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from collections.abc import Callable
from typing import Any

import ray

from fed._config import FedConfig
from fed._exceptions import FedError
from fed._transport.loop_thread import LoopThread
from fed._transport.receiver_host import ActorReceiver, DriverReceiver, start_receiver
from fed._transport.sender_host import ActorSender, ThreadSender, start_sender

_BARRIER_LOOK_S = 0.5  # how often fed.init's barrier asks the receiver which peers reached it


def start(cfg: FedConfig) -> tuple[ThreadSender | ActorSender, DriverReceiver | ActorReceiver]:
    """The party's sender and receiver, once both run and (with ``barrier_on_initializing``)
    every peer is present. On failure nothing is left running; the error is Ray's or fed's."""
    comm = cfg.comm
    loop = LoopThread()
    receiver = start_receiver(cfg, loop)
    sender = None
    try:
        _placed(receiver.start, "receiver", comm.recv_resource_label, comm.timeout_in_ms)
        if cfg.plugins is not None and cfg.plugins.both is not None:  # one proxy, in the receiver actor
            cfg = dataclasses.replace(cfg, plugins=dataclasses.replace(cfg.plugins, relay=receiver.actor))
        sender = start_sender(cfg, loop)
        if comm.send_resource_label:
            _placed(lambda timeout: ray.get(sender.ready(), timeout=timeout), "sender", comm.send_resource_label,
                    comm.timeout_in_ms)
        if cfg.barrier_on_initializing:
            _barrier(cfg.peers, sender, receiver)
    except BaseException:
        if sender is not None:
            sender.stop(timeout=5)
        _stop_quietly(receiver)
        raise
    return sender, receiver


def _stop_quietly(receiver: DriverReceiver | ActorReceiver) -> None:
    try:
        if receiver.in_driver:
            receiver.stop(timeout=5)
    finally:
        receiver.kill()


def _barrier(peers: list[str], sender: Any, receiver: Any) -> None:
    """Wait until every peer is present: it answers a ping, or it has already reached this party
    (pinged, pushed or said goodbye; a fast peer may finish its program before this one gets
    here). A peer that does neither within ``timeout_in_ms`` fails ``fed.init``."""
    pending = {peer: sender.ping(peer) for peer in peers}
    while pending:
        concurrent.futures.wait(pending.values(), timeout=_BARRIER_LOOK_S,
                                return_when=concurrent.futures.FIRST_EXCEPTION)
        for peer in receiver.heard_from(list(pending)).result():
            pending.pop(peer).cancel()
        for peer, answer in list(pending.items()):
            if answer.done():
                answer.result()  # raises if the peer did not answer in time
                del pending[peer]
    receiver.peers_started(peers).result()


def _placed(wait: Callable[[float], Any], what: str, label: Any, timeout_ms: int) -> None:
    """Wait for a proxy to start (``wait(timeout_s)``); a clear error if Ray cannot place it within ``timeout_ms``."""
    try:
        wait(timeout_ms / 1000)
    except (ray.exceptions.GetTimeoutError, concurrent.futures.TimeoutError):
        needs = f"asks Ray for {label}, and no node has that free" if label else "was not scheduled"
        raise FedError(f"fed's {what} actor did not start within {timeout_ms} ms: it {needs} (free now: "
                       f"{ray.available_resources()}). The receiver and the sender each take the resources "
                       "of their label: give the node enough of them (ray start --resources=...)") from None


