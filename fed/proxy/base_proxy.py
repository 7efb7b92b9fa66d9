"""The base classes of a user's link between parties, with RayFed 0.2's interface.

A class passed as ``fed.init(sender_proxy_cls=...)`` subclasses ``SenderProxy``; one passed as
``receiver_proxy_cls=...`` subclasses ``ReceiverProxy``. fed builds them with RayFed's arguments
and moves values over them (``fed._transport.proxy_link``): ``send(dest_party, data,
upstream_seq_id, downstream_seq_id)`` carries ``data``, always ``bytes`` — a message of fed's wire
format, already encoded by fed's codec — and the receiving side's ``get_data(src_party,
upstream_seq_id, curr_seq_id)`` returns those bytes once they arrived. fed decodes and checks them
itself (source, size limits, codec), so a proxy only moves bytes: it never needs pickle. Who sent
the bytes is the proxy's to prove (its TLS, from ``tls_config``); fed trusts the source a message
was delivered for.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any


class ProxyConfig(dict):
    """The job's ``cross_silo_comm`` config, readable as attributes too (``config.timeout_in_ms``;
    a key not given reads as None), as RayFed's ``CrossSiloMessageConfig`` is."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)


def proxy_config(comm: Mapping[str, Any] | None) -> ProxyConfig:
    return ProxyConfig(comm or {})


class SenderProxy(abc.ABC):
    """Sends this party's messages to the other parties."""

    def __init__(self, addresses: dict, party: str, job_name: str, tls_config: dict | None,
                 proxy_config: ProxyConfig | None = None) -> None:
        self._addresses = addresses
        self._party = party
        self._job_name = job_name
        self._tls_config = tls_config
        self._proxy_config = proxy_config

    @abc.abstractmethod
    async def send(self, dest_party: str, data: bytes, upstream_seq_id: Any, downstream_seq_id: Any) -> Any:
        """Deliver ``data`` to ``dest_party``'s receiver proxy under the two ids; return once it
        took them (a falsy return or an exception: not delivered, fed tries again)."""

    async def is_ready(self) -> bool:
        return True

    async def get_proxy_config(self, dest_party: str | None = None) -> ProxyConfig | None:
        return self._proxy_config


class ReceiverProxy(abc.ABC):
    """Receives the other parties' messages on this party's listening address."""

    def __init__(self, listen_addr: str, party: str, job_name: str, tls_config: dict | None,
                 proxy_config: ProxyConfig | None = None) -> None:
        self._listen_addr = listen_addr
        self._party = party
        self._job_name = job_name
        self._tls_config = tls_config
        self._proxy_config = proxy_config

    @abc.abstractmethod
    def start(self) -> Any:
        """Listen (may be a coroutine function)."""

    @abc.abstractmethod
    async def get_data(self, src_party: str, upstream_seq_id: Any, curr_seq_id: Any) -> bytes:
        """The bytes ``src_party`` sent under the two ids, once they arrived (each is asked for once)."""

    async def is_ready(self) -> bool:
        return True

    async def get_proxy_config(self) -> ProxyConfig | None:
        return self._proxy_config


class SenderReceiverProxy(abc.ABC):
    """One object that both sends and receives (RayFed's ``receiver_sender_proxy_cls``)."""

    def __init__(self, addresses: dict, self_party: str, tls_config: dict | None,
                 proxy_config: ProxyConfig | None = None) -> None:
        self._addresses = addresses
        self._party = self_party
        self._tls_config = tls_config
        self._proxy_config = proxy_config

    @abc.abstractmethod
    def start(self) -> Any: ...

    def is_ready(self) -> bool:
        return True

    @abc.abstractmethod
    def get_data(self, src_party: str, upstream_seq_id: Any, curr_seq_id: Any) -> bytes: ...

    @abc.abstractmethod
    def send(self, dest_party: str, data: bytes, upstream_seq_id: Any, downstream_seq_id: Any) -> Any: ...

    def get_proxy_config(self) -> ProxyConfig | None:
        return self._proxy_config
