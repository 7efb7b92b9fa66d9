"""fed's exceptions under the module name RayFed 0.2 uses (``from fed.exceptions import FedRemoteError``).

The same classes as ``fed.FedRemoteError`` and the others; the tree is in ``fed._exceptions``.
"""

from fed._exceptions import FedDivergenceError, FedError, FedPeerLostError, FedRemoteError, FedSendError

__all__ = ["FedDivergenceError", "FedError", "FedPeerLostError", "FedRemoteError", "FedSendError"]
