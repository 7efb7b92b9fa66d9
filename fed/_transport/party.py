"""A party's transport for one job: its receiver and sender started, and its peers present.

The one place ``fed.init`` asks for a party's transport. The receiver is a Ray actor (placed by
``recv_resource_label``), the sender runs as ``sender_host`` decides; both speak over the job's
link (``link.LINKS``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from typing import Any

import ray

from fed._config import FedConfig
from fed._exceptions import FedError
from fed._transport import receiver as receiver_module
from fed._transport.receiver import Receiver
from fed._transport.sender_host import ActorSender, ThreadSender, actor_options, start_sender

_BARRIER_LOOK_S = 0.5  # how often fed.init's barrier asks the receiver which peers reached it


def start(cfg: FedConfig) -> tuple[ThreadSender | ActorSender, Any]:
    """The party's sender and receiver actor, once both run and (with ``barrier_on_initializing``)
    every peer is present. On failure nothing is left running; the error is Ray's or fed's."""
    comm = cfg.comm
    receiver = ray.remote(Receiver).options(
        **actor_options(comm.recv_resource_label, receiver_module.CONCURRENCY, comm.proxy_max_restarts)).remote(cfg)
    sender = None
    try:
        _placed(receiver.start.remote(), "receiver", comm.recv_resource_label, comm.timeout_in_ms)
        if cfg.plugins is not None and cfg.plugins.both is not None:  # one proxy, in the receiver actor
            cfg = dataclasses.replace(cfg, plugins=dataclasses.replace(cfg.plugins, relay=receiver))
        sender = start_sender(cfg)
        if comm.send_resource_label:
            _placed(sender.ready(), "sender", comm.send_resource_label, comm.timeout_in_ms)
        if cfg.barrier_on_initializing:
            _barrier(cfg.peers, sender, receiver)
    except BaseException:
        if sender is not None:
            sender.stop(timeout=5)
        ray.kill(receiver)
        raise
    return sender, receiver

def _barrier(peers: list[str], sender: Any, receiver: Any) -> None:
    """Wait until every peer is present: it answers a ping, or it has already reached this party
    (pinged, pushed or said goodbye; a fast peer may finish its program before this one gets
    here). A peer that does neither within ``timeout_in_ms`` fails ``fed.init``."""
    pending = {peer: sender.ping(peer) for peer in peers}
    while pending:
        concurrent.futures.wait(pending.values(), timeout=_BARRIER_LOOK_S,
                                return_when=concurrent.futures.FIRST_EXCEPTION)
        for peer in ray.get(receiver.heard_from.remote(list(pending))):
            pending.pop(peer).cancel()
        for peer, answer in list(pending.items()):
            if answer.done():
                answer.result()  # raises if the peer did not answer in time
                del pending[peer]
    ray.get(receiver.peers_started.remote(peers))


def _placed(ready: Any, what: str, label: Any, timeout_ms: int) -> None:
    """Wait for a proxy actor to start; a clear error if Ray cannot place it within ``timeout_ms``."""
    try:
        ray.get(ready, timeout=timeout_ms / 1000)
    except ray.exceptions.GetTimeoutError:
        needs = f"asks Ray for {label}, and no node has that free" if label else "was not scheduled"
        raise FedError(f"fed's {what} actor did not start within {timeout_ms} ms: it {needs} (free now: "
                       f"{ray.available_resources()}). The receiver and the sender each take the resources "
                       "of their label: give the node enough of them (ray start --resources=...)") from None


