"""Counters per peer and how fed.stats() combines them (no Ray: Ray metrics are left out)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fed._transport.metrics import Meter, Progress, combine


def test_a_meter_counts_per_peer_and_derives_push_time_and_throughput():
    meter = Meter("job", "alice", "sent")
    meter.add("bob", values=1, bytes=4_000_000)
    meter.took("bob", 2.0)
    meter.add("bob", values=1, bytes=2_000_000, retries=2)
    meter.took("bob", 1.0)
    meter.add("carol", refusals=1, failures=1)
    snap = meter.snapshot()
    assert snap["bob"] == {"values": 2, "bytes": 6_000_000, "retries": 2, "refusals": 0, "failures": 0,
                           "push_seconds_max": 2.0, "push_seconds_mean": 1.5, "mb_per_s": 2.0}
    assert snap["carol"]["values"] == 0 and snap["carol"]["mb_per_s"] == 0.0


def test_stats_combine_both_sides_for_every_peer_and_total_them():
    sent = Meter("job", "alice", "sent")
    sent.add("bob", values=2, bytes=3_000_000)
    sent.took("bob", 1.0)
    sent.took("bob", 2.0)
    received = Meter("job", "alice", "received")
    received.add("carol", values=5, bytes=50, duplicates=1)
    stats = combine("job", "alice", ["bob", "carol"], {"peers": sent.snapshot(), "node": "n1"},
                    {"peers": received.snapshot(), "refused": 3, "waiting_values": 4, "waiting_bytes": 40,
                     "waiting_peak": 80, "awaited": 2, "node": "n2"})
    assert stats["peers"]["bob"]["sent_values"] == 2 and stats["peers"]["bob"]["received_values"] == 0
    assert stats["peers"]["carol"]["received_values"] == 5 and stats["peers"]["carol"]["duplicates"] == 1
    total = stats["total"]
    assert (total["sent_values"], total["received_values"], total["refused"]) == (2, 5, 3)
    assert total["push_seconds_mean"] == pytest.approx(1.5) and total["push_seconds_max"] == 2.0
    assert total["sent_mb_per_s"] == pytest.approx(1.0)
    assert stats["waiting"] == {"values": 4, "bytes": 40, "peak_bytes": 80, "awaited": 2}
    assert stats["nodes"] == {"sender": "n1", "receiver": "n2"}


def test_progress_is_logged_only_for_long_pushes_and_at_most_every_few_seconds(monkeypatch, caplog):
    clock = iter([0.0, 1.0, 6.0, 7.0, 12.0, 13.0])
    monkeypatch.setattr("fed._transport.metrics.time.monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="fed"):
        short = Progress("push of 1:0 to bob", 1000)  # too small: never logged
        short.update(500)
        long = Progress("push of 2:0 to bob", 400_000_000)  # starts at t=1
        for done in (100_000_000, 150_000_000, 300_000_000, 400_000_000):  # at t=6, 7, 12, 13
            long.update(done)
    assert [r.getMessage() for r in caplog.records] == [
        "push of 2:0 to bob: 25% (100 of 400 MB), 20.0 MB/s, about 15 s left",
        "push of 2:0 to bob: 75% (300 of 400 MB), 27.3 MB/s, about 4 s left"]


class FakeMetric:
    """Records what a Ray metric was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, str]] = []

    def inc(self, amount, tags):
        self.calls.append(("inc", amount, tags["peer"]))

    def observe(self, value, tags):
        self.calls.append(("observe", value, tags["peer"]))

    def set(self, value, tags):
        self.calls.append(("set", value, tags["peer"]))


def faked(side: str) -> tuple[Meter, dict[str, FakeMetric]]:
    meter = Meter("job", "alice", side)
    names = ["values", "bytes", "push_seconds"] if side == "sent" else ["values", "waiting_values", "waiting_bytes"]
    meter._ray = {name: FakeMetric() for name in names}
    return meter, meter._ray


def test_on_a_loop_ray_metrics_get_one_sum_per_counter_after_a_second_and_fed_stats_at_once(monkeypatch):
    monkeypatch.setattr("fed._transport.metrics.EXPORT_EVERY_S", 0.05)
    meter, ray_metrics = faked("sent")

    async def pushes():
        for _ in range(100):
            meter.add("bob", values=1, bytes=10, retries=0)
            meter.took("bob", 0.5)
        meter.add("carol", values=1, bytes=7)
        assert meter.snapshot()["bob"]["values"] == 100  # fed.stats() does not wait for the export
        assert all(not metric.calls for metric in ray_metrics.values())
        await asyncio.sleep(0.2)

    asyncio.run(pushes())
    assert sorted(ray_metrics["values"].calls) == [("inc", 1, "carol"), ("inc", 100, "bob")]
    assert sorted(ray_metrics["bytes"].calls) == [("inc", 7, "carol"), ("inc", 1000, "bob")]
    assert ray_metrics["push_seconds"].calls == [("observe", 0.5, "bob")] * 100


def test_gauges_get_their_latest_level_and_stop_exports_what_is_left():
    meter, ray_metrics = faked("received")

    async def takes():
        for held in range(5, 0, -1):
            meter.waiting(held, held * 100)
        meter.add("bob", values=3, duplicates=1)  # duplicates: no Ray metric here, fed.stats() counts it
        meter.export()  # what stop does; the timer finds nothing left

    asyncio.run(takes())
    assert ray_metrics["waiting_values"].calls == [("set", 1, "")]
    assert ray_metrics["waiting_bytes"].calls == [("set", 100, "")]
    assert ray_metrics["values"].calls == [("inc", 3, "bob")]
    assert meter.snapshot()["bob"]["duplicates"] == 1


def test_without_a_running_loop_ray_metrics_are_given_at_once():
    meter, ray_metrics = faked("sent")
    meter.add("bob", values=2)
    meter.add("bob", values=1)
    assert ray_metrics["values"].calls == [("inc", 2, "bob"), ("inc", 1, "bob")]
