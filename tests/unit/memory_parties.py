"""Parties on the in-memory link (``fed._transport.memory_link``): each a receiver and a sender in
this event loop, with no sockets and no Ray, so the transport's policy is tested on its own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

from fed._config import FedConfig, build_config
from fed._serialization.registry import NONE, Types
from fed._transport import memory_link
from fed._transport.receiver import Receiver
from fed._transport.sender import Sender

PARTIES = ("alice", "bob", "carol")
ADDRESSES = {party: f"mem-{party}:1" for party in PARTIES}


def config(party: str, parties=("alice", "bob"), tls_config: dict | None = None, types: Types = NONE,
           **comm: Any) -> FedConfig:
    cfg = build_config(party=party, addresses={p: ADDRESSES[p] for p in parties}, job_name="j",
                       config={"cross_silo_comm": {"timeout_in_ms": 2000, **comm}}, tls_config=tls_config,
                       types=types)
    return dataclasses.replace(cfg, link="memory")


@dataclasses.dataclass
class Party:
    config: FedConfig
    receiver: Receiver
    sender: Sender

    @property
    def name(self) -> str:
        return self.config.party

    @property
    def address(self) -> str:
        return self.config.listen_address


@contextlib.asynccontextmanager
async def parties(*names: str, serving: tuple[str, ...] | None = None, tls: dict[str, dict] | None = None,
                  types: Types = NONE, **comm: Any):
    """``Party`` per name (all on one network); only ``serving`` ones (by default all) listen; each
    carries the registered ``types``."""
    members = tuple(names)
    made = {}
    for name in names:
        cfg = config(name, members, (tls or {}).get(name), types, **comm)
        made[name] = Party(cfg, Receiver(cfg), Sender(cfg))
    for name in serving if serving is not None else names:
        await made[name].receiver.start()
    try:
        yield made
    finally:
        for party in made.values():
            await party.sender.stop()
            await party.receiver.stop(0)


def net() -> memory_link.Network:
    return memory_link.network()


def ready(value: Any) -> list:
    """What ``Sender.send`` takes: a one-item list holding an awaitable of the value."""
    done = asyncio.get_running_loop().create_future()
    done.set_result(value)
    return [done]


def elapsed(started: float) -> float:
    return asyncio.get_running_loop().time() - started


def now() -> float:
    return asyncio.get_running_loop().time()
