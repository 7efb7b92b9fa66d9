"""RayFed: several parties run one program together, each on its own Ray cluster."""

from __future__ import annotations

from fed import config, exceptions, proxy
from fed._api import audit_log, get, init, kill, shutdown, stats
from fed._exceptions import FedDivergenceError, FedError, FedPeerLostError, FedRemoteError, FedSendError
from fed._runtime.objects import FedObject
from fed._runtime.remote import FedActorHandle, remote
from fed._send_recv import recv, send
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
    "config",
    "exceptions",
    "get",
    "init",
    "kill",
    "proxy",
    "recv",
    "register_type",
    "remote",
    "send",
    "shutdown",
    "stats",
]
