"""Horizontal federated learning with FedAvg: clients train locally, the server averages.

Across real parties (one process and one Ray each), or in one process that plays them all:

    fed run --parties server,client1,client2,client3 examples/fedavg/fedavg.py
    fed run --single --parties server,client1,client2,client3 examples/fedavg/fedavg.py

Each client holds a shard of scikit-learn's digits (8x8 images of handwritten digits, shipped
with the package) and never shows it to anyone: it trains a softmax regression on its shard from
the global weights and hands back only the new weights and its sample count. The server averages
the weights (weighted by sample count), scores them on a held-out set only it holds, and after
the last round plots the accuracy per round. Options (the same at every party):
``--clients N --rounds R --epochs E --port BASE --plot PATH``.
"""

from __future__ import annotations

import argparse

import numpy as np

import fed

CLASSES = 10
SEED = 7


def split_digits(clients: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Row indices of each client's shard of the training set, and of the server's held-out set
    (a fifth). Every party computes the same split from the seed; each loads only its own rows."""
    from sklearn.datasets import load_digits

    n = len(load_digits().target)
    order = np.random.default_rng(SEED).permutation(n)
    held_out, train = order[: n // 5], order[n // 5:]
    return np.array_split(train, clients), held_out


def load(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data[rows] / 16.0, digits.target[rows]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@fed.remote
class Client:
    """One client's data (never leaves it) and its local training."""

    def __init__(self, index: int, clients: int) -> None:
        self.x, self.y = load(split_digits(clients)[0][index])
        self.rng = np.random.default_rng(SEED + index)

    def train(self, weights: dict, epochs: int, lr: float = 0.5, batch: int = 32) -> tuple[dict, int]:
        """Mini-batch gradient descent on the local shard, from the global ``weights``."""
        w, b = weights["w"].copy(), weights["b"].copy()
        onehot = np.eye(CLASSES)[self.y]
        for _ in range(epochs):
            order = self.rng.permutation(len(self.y))
            for start in range(0, len(order), batch):
                rows = order[start:start + batch]
                error = softmax(self.x[rows] @ w + b) - onehot[rows]
                w -= lr * self.x[rows].T @ error / len(rows)
                b -= lr * error.mean(axis=0)
        return {"w": w, "b": b}, len(self.y)


@fed.remote
def average(*updates: tuple[dict, int]) -> dict:
    """FedAvg: the clients' weights averaged, each weighted by its number of samples."""
    total = sum(n for _, n in updates)
    return {key: sum(weights[key] * (n / total) for weights, n in updates) for key in ("w", "b")}


@fed.remote
def accuracy(weights: dict, clients: int) -> float:
    """Share of the server's held-out digits the model classifies right."""
    x, y = load(split_digits(clients)[1])
    return float(((x @ weights["w"] + weights["b"]).argmax(axis=1) == y).mean())


@fed.remote
def plot(path: str, *accuracies: float) -> str:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(1, len(accuracies) + 1), accuracies, marker="o")
    ax.set(xlabel="round", ylabel="held-out accuracy", title="FedAvg on digits", ylim=(0, 1))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("party")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--port", type=int, default=11100, help="the server's port; client i uses port + i")
    parser.add_argument("--plot", default="fedavg_accuracy.png", help="where the server writes its plot")
    opts = parser.parse_args()
    parties = ["server"] + [f"client{i}" for i in range(1, opts.clients + 1)]
    if opts.party not in parties:
        parser.error(f"party must be one of {', '.join(parties)}")
    cluster = {p: {"address": f"127.0.0.1:{opts.port + i}"} for i, p in enumerate(parties)}
    fed.init(address="local", cluster=cluster, party=opts.party)

    clients = [Client.party(p).remote(i, opts.clients) for i, p in enumerate(parties[1:])]
    weights = {"w": np.zeros((64, CLASSES)), "b": np.zeros(CLASSES)}
    accuracies = []
    for r in range(1, opts.rounds + 1):
        updates = [c.train.remote(weights, opts.epochs) for c in clients]
        weights = average.party("server").remote(*updates)
        accuracies.append(accuracy.party("server").remote(weights, opts.clients))
        print(f"round {r:2d}: held-out accuracy {fed.get(accuracies[-1]):.4f}", flush=True)
    path = fed.get(plot.party("server").remote(opts.plot, *accuracies))
    print(f"final accuracy {fed.get(accuracies[-1]):.4f}; the server plotted it in {path}", flush=True)
    fed.shutdown()


if __name__ == "__main__":
    main()
