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


class _Recorded:
    """Stands in for a Ray metric: what was recorded, in order."""

    def __init__(self, log: list, name: str, fails: bool = False) -> None:
        self._log, self._name, self._fails = log, name, fails

    def _record(self, kind: str, value: float, tags: dict) -> None:
        if self._fails:
            raise RuntimeError("metrics agent gone")
        self._log.append((self._name, kind, value, tags["peer"]))

    def inc(self, value, tags):
        self._record("inc", value, tags)

    def observe(self, value, tags):
        self._record("observe", value, tags)

    def set(self, value, tags):
        self._record("set", value, tags)


def _with_ray_metrics(meter: Meter, names: tuple[str, ...], fails: bool = False) -> list:
    log: list = []
    meter._ray = {name: _Recorded(log, name, fails) for name in names}
    return log


def test_ray_metrics_get_what_changed_once_a_mirroring_period_not_one_record_a_push(monkeypatch):
    monkeypatch.setattr("fed._transport.metrics.MIRROR_EVERY_S", 0.05)

    async def main() -> tuple[list, list]:
        meter = Meter("job", "alice", "sent")
        log = _with_ray_metrics(meter, ("values", "bytes", "push_seconds"))
        for i in range(100):
            meter.add("bob", values=1, bytes=10)
            meter.took("bob", 0.001 * i)
        meter.add("carol", values=2, bytes=0)
        early = list(log)
        await asyncio.sleep(0.2)
        return early, log

    early, log = asyncio.run(main())
    assert early == []  # nothing recorded inside the pushes themselves
    incs = sorted(entry for entry in log if entry[1] == "inc")
    assert incs == [("bytes", "inc", 1000, "bob"), ("values", "inc", 2, "carol"), ("values", "inc", 100, "bob")]
    observed = [entry[2] for entry in log if entry[1] == "observe"]
    assert observed == pytest.approx([0.001 * i for i in range(100)])  # the histogram loses nothing


def test_ray_metrics_are_recorded_at_once_without_an_event_loop_and_gauges_keep_the_last_value():
    meter = Meter("job", "bob", "received")
    log = _with_ray_metrics(meter, ("values", "waiting_values", "waiting_bytes"))
    meter.add("alice", values=3)
    meter.waiting(4, 400)
    meter.waiting(1, 100)
    assert log == [("values", "inc", 3, "alice"), ("waiting_values", "set", 4, ""), ("waiting_bytes", "set", 400, ""),
                   ("waiting_values", "set", 1, ""), ("waiting_bytes", "set", 100, "")]


def test_a_ray_metric_that_fails_to_record_leaves_the_counters_and_the_caller_alone():
    meter = Meter("job", "alice", "sent")
    _with_ray_metrics(meter, ("values",), fails=True)
    meter.add("bob", values=1)  # no loop: mirrored at once, and the failure is only logged
    assert meter.snapshot()["bob"]["values"] == 1
