"""RayFed: several parties run one program together, each on its own Ray cluster."""

from __future__ import annotations

from fed._api import audit_log, get, init, kill, shutdown, stats
from fed._exceptions import FedDivergenceError, FedError, FedPeerLostError, FedRemoteError, FedSendError
from fed._runtime.objects import FedObject
from fed._runtime.remote import FedActorHandle, remote
from fed._serialization.registry import register_type

__all__ = [
    "FedActorHandle",
    "FedDivergenceError",
    "FedError",
    "FedObject",
    "FedPeerLostError",
    "FedRemoteError",
    "FedSendError",
    "audit_log",
    "get",
    "init",
    "kill",
    "register_type",
    "remote",
    "shutdown",
    "stats",
]
