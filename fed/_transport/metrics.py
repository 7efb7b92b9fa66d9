"""Numbers a user can watch: what this party's sender pushed and its receiver took, per peer.

Each side keeps plain counters, which ``fed.stats()`` gathers, and mirrors them into Ray metrics,
which Ray exports on every node's Prometheus endpoint and shows in its dashboard. The metrics are
named ``fed_<side>_<counter>`` (Prometheus adds Ray's ``ray_`` prefix) and tagged with the job,
this party and the peer.

A Ray metric costs tens of microseconds of Python a record, and a small push made up to nine of
them on the transport's event loop, in the turn that hands the value to the program, competing
with the program's next calls for the interpreter. So the counters are mirrored into Ray at most
every ``MIRROR_EVERY_S``: what changed since, one record a metric and peer (push times: one
observation each, in one batch), and the rest at ``stop`` (Ray exports every few seconds anyway).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

logger = logging.getLogger("fed")

# Counters per peer, by side. ``sent``: values, bytes, retries (attempts after a transient
# failure), refusals (the peer or the size limit refused the value), failures (given up).
# ``received``: values, bytes, duplicates (dropped).
COUNTERS = {"sent": ("values", "bytes", "retries", "refusals", "failures"),
            "received": ("values", "bytes", "duplicates")}
_LATENCY_BOUNDS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
_TAGS = ("job", "party", "peer")
MIRROR_EVERY_S = 1.0
_MAX_PENDING_OBSERVATIONS = 10_000  # push times kept for the histogram between mirrorings


class Meter:
    """The counters of one side (``sent`` or ``received``) of this party, per peer."""

    def __init__(self, job: str, party: str, side: str) -> None:
        self._side = side
        self._tags = {"job": job, "party": party}
        self._peers: dict[str, dict[str, float]] = {}
        self._ray = _ray_metrics(side)
        # Not yet in Ray: amounts by (counter, peer), (peer, push time)s, the gauges' last values.
        self._added: dict[tuple[str, str], float] = {}
        self._observed: list[tuple[str, float]] = []
        self._gauges: dict[str, float] = {}
        self._mirroring: asyncio.TimerHandle | None = None

    def add(self, peer: str, **amounts: float) -> None:
        """Add to ``peer``'s counters, e.g. ``add('bob', values=1, bytes=1024)``."""
        row = self._row(peer)
        for name, amount in amounts.items():
            row[name] += amount
            if amount > 0 and name in self._ray:
                self._added[(name, peer)] = self._added.get((name, peer), 0) + amount
        self._mirror_soon()

    def took(self, peer: str, seconds: float) -> None:
        """One push to ``peer`` took ``seconds`` from its value being ready to its delivery."""
        row = self._row(peer)
        row["push_seconds_total"] += seconds
        row["push_seconds_max"] = max(row["push_seconds_max"], seconds)
        if "push_seconds" in self._ray:
            self._observed.append((peer, seconds))
            if len(self._observed) >= _MAX_PENDING_OBSERVATIONS:
                self.mirror()
        self._mirror_soon()

    def waiting(self, values: int, nbytes: int) -> None:
        """Values (and their payload bytes) this party's receiver holds that were not consumed yet."""
        if "waiting_values" in self._ray:
            self._gauges.update(waiting_values=values, waiting_bytes=nbytes)
            self._mirror_soon()

    def mirror(self) -> None:
        """Record in Ray's metrics what changed since the last time (also called on a timer)."""
        if self._mirroring is not None:
            self._mirroring.cancel()
            self._mirroring = None
        added, self._added = self._added, {}
        observed, self._observed = self._observed, []
        gauges, self._gauges = self._gauges, {}
        try:
            for (name, peer), amount in added.items():
                self._ray[name].inc(amount, tags={**self._tags, "peer": peer})
            for peer, seconds in observed:
                self._ray["push_seconds"].observe(seconds, tags={**self._tags, "peer": peer})
            for name, amount in gauges.items():
                self._ray[name].set(amount, tags={**self._tags, "peer": ""})
        except Exception as exc:  # noqa: BLE001 - metrics are an extra; fed.stats() still counts
            logger.info("fed: Ray metrics could not be recorded (%s); fed.stats() still counts", exc)

    def _mirror_soon(self) -> None:
        """Mirror within ``MIRROR_EVERY_S`` on the running event loop (at once without one)."""
        if self._mirroring is not None or not (self._added or self._observed or self._gauges):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.mirror()
            return
        self._mirroring = loop.call_later(MIRROR_EVERY_S, self.mirror)

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Each peer's counters, with the mean push time and throughput of pushes where timed."""
        out = {}
        for peer, row in self._peers.items():
            row = dict(row)
            if self._side == "sent":
                pushes, seconds = row["values"], row.pop("push_seconds_total")
                row["push_seconds_mean"] = seconds / pushes if pushes else 0.0
                row["mb_per_s"] = row["bytes"] / seconds / 1e6 if seconds > 0 else 0.0
            out[peer] = row
        return out

    def _row(self, peer: str) -> dict[str, float]:
        row = self._peers.get(peer)
        if row is None:
            row = self._peers[peer] = dict.fromkeys(COUNTERS[self._side], 0)
            if self._side == "sent":
                row.update(push_seconds_total=0.0, push_seconds_max=0.0)
        return row


def node_id() -> str | None:
    """The Ray node this process runs on (None outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _ray_metrics(side: str) -> dict[str, Any]:
    """Ray metrics for ``side``; none outside Ray (tests of the transport alone) or if Ray refuses."""
    try:
        import ray
        from ray.util import metrics

        if not ray.is_initialized():
            return {}
        made: dict[str, Any] = {name: metrics.Counter(f"fed_{side}_{name}", f"fed: {side} {name}, per peer",
                                                      tag_keys=_TAGS)
                                for name in COUNTERS[side]}
        if side == "sent":
            made["push_seconds"] = metrics.Histogram(
                "fed_push_seconds", "fed: seconds from a value being ready to its delivery to the peer",
                boundaries=_LATENCY_BOUNDS, tag_keys=_TAGS)
        else:
            for name in ("waiting_values", "waiting_bytes"):
                made[name] = metrics.Gauge(f"fed_{name}", f"fed: {name.replace('_', ' ')} not consumed yet",
                                           tag_keys=_TAGS)
        return made
    except Exception as exc:  # noqa: BLE001 - metrics are an extra; fed.stats() still counts
        logger.info("fed: Ray metrics unavailable (%s); fed.stats() still counts", exc)
        return {}


class Progress:
    """INFO logs of a long push's progress (percent, MB/s, time left), at most every ``every`` s."""

    LONG = 100 * 1024 * 1024  # pushes of at least this many bytes are logged
    EVERY_S = 5.0

    def __init__(self, what: str, total: int) -> None:
        self._what, self._total = what, total
        self._started = self._last = time.monotonic()
        self._on = total >= self.LONG

    def update(self, done: int) -> None:
        if not self._on:
            return
        now = time.monotonic()
        if now - self._last < self.EVERY_S or done >= self._total:
            return
        self._last = now
        rate = done / (now - self._started)
        left = (self._total - done) / rate if rate > 0 else float("inf")
        # Percent rounded down: a push a few bytes short of its end is at 99%, not 100%.
        logger.info("%s: %d%% (%.0f of %.0f MB), %.1f MB/s, about %.0f s left", self._what,
                    100 * done // self._total, done / 1e6, self._total / 1e6, rate / 1e6, left)


def combine(job: str, party: str, peers: list[str], sent: dict[str, Any], received: dict[str, Any]) -> dict[str, Any]:
    """``fed.stats()``: both sides' counters per peer, totals over the peers, what waits, and the
    Ray nodes the sender and receiver run on. A side with nothing to report may be ``{}``."""
    rows = {}
    for peer in peers:
        out, took = sent.get("peers", {}).get(peer, {}), received.get("peers", {}).get(peer, {})
        rows[peer] = {
            "sent_values": out.get("values", 0), "sent_bytes": out.get("bytes", 0),
            "push_seconds_mean": out.get("push_seconds_mean", 0.0),
            "push_seconds_max": out.get("push_seconds_max", 0.0),
            "sent_mb_per_s": out.get("mb_per_s", 0.0), "retries": out.get("retries", 0),
            "refusals": out.get("refusals", 0), "failures": out.get("failures", 0),
            "received_values": took.get("values", 0), "received_bytes": took.get("bytes", 0),
            "duplicates": took.get("duplicates", 0)}
    total = {key: sum(row[key] for row in rows.values())
             for key in ("sent_values", "sent_bytes", "retries", "refusals", "failures",
                         "received_values", "received_bytes", "duplicates")}
    seconds = sum(row["push_seconds_mean"] * row["sent_values"] for row in rows.values())
    total.update(push_seconds_mean=seconds / total["sent_values"] if total["sent_values"] else 0.0,
                 push_seconds_max=max((row["push_seconds_max"] for row in rows.values()), default=0.0),
                 sent_mb_per_s=total["sent_bytes"] / seconds / 1e6 if seconds > 0 else 0.0,
                 refused=received.get("refused", 0))
    return {"job": job, "party": party, "peers": rows, "total": total,
            "waiting": {"values": received.get("waiting_values", 0), "bytes": received.get("waiting_bytes", 0),
                        "peak_bytes": received.get("waiting_peak", 0), "awaited": received.get("awaited", 0)},
            "nodes": {"sender": sent.get("node"), "receiver": received.get("node")}}
