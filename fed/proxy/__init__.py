"""RayFed 0.2's proxy plug-in interface: ``fed.init(sender_proxy_cls=..., receiver_proxy_cls=...)``."""

from fed.proxy.base_proxy import ProxyConfig, ReceiverProxy, SenderProxy, SenderReceiverProxy

__all__ = ["ProxyConfig", "ReceiverProxy", "SenderProxy", "SenderReceiverProxy"]
