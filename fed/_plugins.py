"""RayFed 0.2's proxy plug-ins given to ``fed.init``: checked, and turned into ``Plugins``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fed._config import Plugins
from fed.proxy.base_proxy import ReceiverProxy, SenderProxy, SenderReceiverProxy


def plugins(sender: Any, receiver: Any, both: Any, tls_config: Mapping[str, Any] | None,
            comm: Mapping[str, Any] | None) -> Plugins | None:
    """The proxy classes to move values over, or None for fed's own link; ``ValueError`` for
    classes that do not fit RayFed's interface (``fed.proxy.base_proxy``)."""
    if sender is None and receiver is None and both is None:
        return None
    if both is not None:
        if sender is not None or receiver is not None:
            raise ValueError("fed.init takes receiver_sender_proxy_cls alone, or sender_proxy_cls with "
                             "receiver_proxy_cls, not both kinds")
        _check(both, SenderReceiverProxy, "receiver_sender_proxy_cls")
        return Plugins(sender=None, receiver=None, both=both, tls_config=_plain(tls_config), comm=dict(comm or {}))
    if sender is None or receiver is None:
        given, missing = ("sender_proxy_cls", "receiver_proxy_cls")[::1 if sender is not None else -1]
        raise ValueError(f"fed.init({given}=...) needs {missing} too: values leave through one and arrive "
                         "through the other (or give one class as receiver_sender_proxy_cls)")
    _check(sender, SenderProxy, "sender_proxy_cls")
    _check(receiver, ReceiverProxy, "receiver_proxy_cls")
    return Plugins(sender=sender, receiver=receiver, tls_config=_plain(tls_config), comm=dict(comm or {}))


def _check(cls: Any, base: type, name: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"fed.init({name}=...) takes a subclass of fed.proxy.base_proxy.{base.__name__}, "
                         f"got {cls!r}")


def _plain(tls_config: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(tls_config) if tls_config is not None else None
