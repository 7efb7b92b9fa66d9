"""Secure aggregation by pairwise additive masking: the server learns the sum, not any update.

    fed run --parties server,client1,client2,client3 examples/secure_aggregation/secure_aggregation.py
    fed run --single --parties server,client1,client2,client3 examples/secure_aggregation/secure_aggregation.py

Every client holds a model update (here a vector made from its seed) that the server must not
see. Each client makes an X25519 key pair and sends its public key to the other clients; every
pair of clients then shares a secret nobody else knows, from which both derive the same mask.
The client with the smaller index adds the mask, the other subtracts it, so all masks cancel in
the sum. Updates are fixed point (16 fractional bits) in arithmetic modulo 2**32, so a masked
update is uniformly random to the server and the sum is exact. (No client may drop out here:
a real protocol adds secret-shared seeds to recover from dropouts.)

``--verify`` makes each client also reveal its update, for the test only: the server then checks
that what it received differs from every update and that the unmasked sum is the exact sum.
Options: ``--clients N --size D --port BASE --verify``.
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np

import fed

SCALE = 2 ** 16  # fixed point: 16 fractional bits
SEED = 7


def make_update(index: int, size: int) -> np.ndarray:
    return np.random.default_rng(SEED + index).normal(0, 1, size)


def to_fixed(update: np.ndarray) -> np.ndarray:
    """Fixed point, as uint32 (two's complement): sums of these wrap modulo 2**32."""
    return np.round(update * SCALE).astype(np.int64).astype(np.uint32)


def from_fixed(total: np.ndarray) -> np.ndarray:
    return total.astype(np.int32).astype(np.float64) / SCALE


@fed.remote
class Client:
    def __init__(self, index: int, size: int) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        self.index = index
        self.update = make_update(index, size)  # private: never sent (unless --verify)
        self.key = X25519PrivateKey.generate()

    def public_key(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def _mask(self, other: int, their_key: bytes, size: int) -> np.ndarray:
        """The mask this client shares with client ``other``: both derive it from their DH secret."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        secret = self.key.exchange(X25519PublicKey.from_public_bytes(their_key))
        pair = f"mask {min(self.index, other)}-{max(self.index, other)}".encode()
        seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=pair).derive(secret)
        return np.random.default_rng(int.from_bytes(seed, "big")).integers(0, 2 ** 32, size, dtype=np.uint32)

    def masked_update(self, *public_keys: bytes) -> np.ndarray:
        """This client's fixed-point update plus the masks shared with smaller-index clients,
        minus those shared with larger-index ones (modulo 2**32)."""
        masked = to_fixed(self.update)
        for other, key in enumerate(public_keys):
            if other != self.index:
                mask = self._mask(other, key, len(masked))
                masked = masked + mask if self.index < other else masked - mask
        return masked

    def reveal(self) -> np.ndarray:
        """For --verify only: the update itself, so the test can check the server's view."""
        return to_fixed(self.update)


def unmasked_sum(masked: tuple[np.ndarray, ...]) -> np.ndarray:
    """The sum of masked updates modulo 2**32, where the masks cancel: the sum of the updates."""
    total = np.zeros_like(masked[0])
    for m in masked:
        total += m  # uint32: wraps modulo 2**32
    return from_fixed(total)


@fed.remote
def aggregate(*masked: np.ndarray) -> np.ndarray:
    """The server's whole view: masked updates, and from them the sum."""
    return unmasked_sum(masked)


@fed.remote
def verify(n: int, *inputs: np.ndarray) -> str:
    """--verify: the server's inputs (first n) against the revealed updates (last n)."""
    masked, raw = inputs[:n], inputs[n:]
    equal = max(float((m == r).mean()) for m, r in zip(masked, raw))
    exact = bool((unmasked_sum(masked) == unmasked_sum(raw)).all())
    return f"largest share of a masked input's coordinates equal to its update: {equal:.4f}; sum exact: {exact}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("party")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--size", type=int, default=100_000, help="length of each update")
    parser.add_argument("--port", type=int, default=11300, help="the server's port; client i uses port + i")
    parser.add_argument("--verify", action="store_true", help="reveal the updates to check the protocol (tests)")
    opts = parser.parse_args()
    parties = ["server"] + [f"client{i}" for i in range(1, opts.clients + 1)]
    if opts.party not in parties:
        parser.error(f"party must be one of {', '.join(parties)}")
    cluster = {p: {"address": f"127.0.0.1:{opts.port + i}"} for i, p in enumerate(parties)}
    fed.init(address="local", cluster=cluster, party=opts.party)

    clients = [Client.party(p).remote(i, opts.size) for i, p in enumerate(parties[1:])]
    public_keys = [c.public_key.remote() for c in clients]          # each goes to every other client
    masked = [c.masked_update.remote(*public_keys) for c in clients]  # each goes to the server only
    total = fed.get(aggregate.party("server").remote(*masked))
    # The demo's updates come from known seeds, so the plain float sum can be computed to compare.
    expected = sum(make_update(i, opts.size) for i in range(opts.clients))
    digest = hashlib.sha256(total.tobytes()).hexdigest()[:16]
    print(f"sum of {opts.clients} updates: first {np.round(total[:3], 4).tolist()}, sha256 {digest}, "
          f"largest error against the plain float sum {np.abs(total - expected).max():.2e}", flush=True)
    if opts.verify:
        revealed = [c.reveal.remote() for c in clients]
        print(f"verify: {fed.get(verify.party('server').remote(opts.clients, *masked, *revealed))}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
