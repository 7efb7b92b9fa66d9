"""Vertical federated learning: a split model over features held by two parties.

    fed run --parties alice,bob examples/split_learning/split_learning.py
    fed run --single --parties alice,bob examples/split_learning/split_learning.py

alice and bob hold different columns of the same samples: alice the top half of each 8x8 digit
image (scikit-learn's digits), bob the bottom half and the labels. (Both already know which rows
are the same sample, as after a private set intersection.) Each has a bottom layer of its own;
bob also holds the top layer. Per batch, alice sends bob her bottom layer's activations; bob
finishes the forward pass, the loss and the backward pass, updates his layers, and sends alice
the gradient of the loss for her activations, with which she updates hers. Only activations and
gradients cross; the raw features and the labels never leave their party (across real parties,
each prints from its audit log which functions' values left it). Options: ``--epochs E --port BASE``.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

import fed

SEED = 7
HIDDEN = 16
CLASSES = 10
BATCH = 64
LR = 0.1


def rows() -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows, the same at both parties (from the shared seed)."""
    from sklearn.datasets import load_digits

    n = len(load_digits().target)
    order = np.random.default_rng(SEED).permutation(n)
    return order[n // 5:], order[: n // 5]


def columns(party: str) -> slice:
    return slice(0, 32) if party == "alice" else slice(32, 64)


def load(party: str) -> tuple[np.ndarray, np.ndarray]:
    """This party's feature columns (and, at bob, the labels): loaded at the party, never sent."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data[:, columns(party)] / 16.0, digits.target


class Dense:
    """A fully connected layer trained by plain gradient descent."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator) -> None:
        self.w = rng.normal(0, np.sqrt(2 / n_in), (n_in, n_out))
        self.b = np.zeros(n_out)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.w + self.b

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Update from ``grad`` (of the loss for this layer's output); the gradient for its input."""
        grad_in = grad @ self.w.T
        self.w -= LR * self.x.T @ grad
        self.b -= LR * grad.sum(axis=0)
        return grad_in


@fed.remote
class Bottom:
    """A party's bottom layer over its own feature columns: x -> relu(x W + b)."""

    def __init__(self, party: str) -> None:
        self.x, _ = load(party)
        self.layer = Dense(32, HIDDEN, np.random.default_rng(SEED + (party == "bob")))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        self.h = np.maximum(self.layer.forward(self.x[batch]), 0)
        return self.h

    def backward(self, grad_h: np.ndarray) -> None:
        self.layer.backward(grad_h * (self.h > 0))


@fed.remote
class Top:
    """bob's part: his own bottom layer, the top layer over both bottoms' outputs, and the labels."""

    def __init__(self) -> None:
        _, self.y = load("bob")
        self.x, _ = load("bob")
        rng = np.random.default_rng(SEED + 1)
        self.mine = Dense(32, HIDDEN, rng)
        self.top = Dense(2 * HIDDEN, CLASSES, rng)
        self.losses: list[float] = []

    def _logits(self, h_alice: np.ndarray, batch: np.ndarray) -> np.ndarray:
        self.h_bob = np.maximum(self.mine.forward(self.x[batch]), 0)
        return self.top.forward(np.hstack([h_alice, self.h_bob]))

    def step(self, h_alice: np.ndarray, batch: np.ndarray) -> np.ndarray:
        """Forward, loss and backward for one batch; returns the gradient for alice's activations."""
        logits = self._logits(h_alice, batch)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        y = self.y[batch]
        self.losses.append(float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean()))
        grad = p
        grad[np.arange(len(y)), y] -= 1
        grad_in = self.top.backward(grad / len(y))
        self.mine.backward(grad_in[:, HIDDEN:] * (self.h_bob > 0))
        return grad_in[:, :HIDDEN]

    def epoch_loss(self) -> float:
        loss, self.losses = float(np.mean(self.losses)), []
        return loss

    def accuracy(self, h_alice: np.ndarray, batch: np.ndarray) -> float:
        return float((self._logits(h_alice, batch).argmax(axis=1) == self.y[batch]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("party", choices=["alice", "bob"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--port", type=int, default=11200, help="alice's port; bob uses port + 1")
    opts = parser.parse_args()
    cluster = {"alice": {"address": f"127.0.0.1:{opts.port}"}, "bob": {"address": f"127.0.0.1:{opts.port + 1}"}}
    fed.init(address="local", cluster=cluster, party=opts.party)

    train, test = rows()
    alice, bob = Bottom.party("alice").remote("alice"), Top.party("bob").remote()
    order = np.random.default_rng(SEED)
    for epoch in range(1, opts.epochs + 1):
        shuffled = order.permutation(train)  # the same at both parties: they agree on the batches
        for start in range(0, len(shuffled), BATCH):
            batch = shuffled[start:start + BATCH]
            activations = alice.forward.remote(batch)           # alice -> bob: activations only
            alice.backward.remote(bob.step.remote(activations, batch))  # bob -> alice: gradients only
        print(f"epoch {epoch:2d}: training loss {fed.get(bob.epoch_loss.remote()):.4f}", flush=True)
    accuracy = fed.get(bob.accuracy.remote(alice.forward.remote(test), test))
    print(f"test accuracy {accuracy:.4f}", flush=True)
    fed.shutdown()  # waits for pushes in flight, so the audit log is complete
    sent = Counter(entry["function"] for entry in fed.audit_log())
    print(f"{opts.party} sent: {dict(sorted(sent.items()))}", flush=True)


if __name__ == "__main__":
    main()
