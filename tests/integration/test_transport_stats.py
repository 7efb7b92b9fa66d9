"""The sender's and receiver's counters (behind fed.stats()) and the progress log of long pushes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re

import numpy as np
import pytest
from test_receiver import BIG, CAP, Point, configs, cost, ready, serving, with_bob

from fed._exceptions import FedSendError
from fed._transport.metrics import Progress


def test_values_held_for_this_party_are_counted_until_consumed():
    async def test(sender, receiver, _):
        value = np.zeros(10_000, dtype=np.uint8)
        for i in (1, 2, 3):
            await sender.send("bob", f"{i}:0", f"f@alice#{i}", ready(value))
        held = receiver.stats()
        # What bob holds counts the payload and what it may decode to; what moved is the payload.
        assert held["waiting_values"] == 3 and held["waiting_bytes"] == 3 * cost(value), held
        payload = held["peers"]["alice"]["bytes"]
        assert held["peers"]["alice"]["values"] == 3 and 3 * 10_000 <= payload < held["waiting_bytes"]
        await receiver.get("alice", "1:0", "f@alice#1")
        after = receiver.stats()
        assert after["waiting_values"] == 2 and after["waiting_bytes"] == held["waiting_bytes"] * 2 // 3, after
        sent = (await sender.stats())["peers"]["bob"]
        assert (sent["values"], sent["bytes"]) == (3, payload), sent
        assert 0 < sent["push_seconds_mean"] <= sent["push_seconds_max"] and sent["mb_per_s"] > 0, sent

    with_bob(test)


def test_refusals_and_failures_are_counted_on_both_sides():
    async def test(sender, receiver, _):
        with pytest.raises(FedSendError, match="class this party does not accept"):  # bob refuses it
            await sender.send("bob", "1:0", "f@alice#1", ready(Point(1)))
        with pytest.raises(FedSendError, match="messages_max_size_in_bytes"):  # never leaves alice
            await sender.send("bob", "2:0", "f@alice#2", ready(b"x" * 5000))
        sent = (await sender.stats())["peers"]["bob"]
        assert (sent["values"], sent["refusals"], sent["failures"], sent["retries"]) == (0, 2, 2, 0), sent
        assert receiver.stats()["refused"] == 1

    with_bob(test, messages_max_size_in_bytes=4096)


def test_retries_are_counted_when_the_peer_pushes_back():
    async def test(sender, receiver, _):
        value = BIG
        await sender.send("bob", "1:0", "f@alice#1", ready(value))
        later = asyncio.ensure_future(sender.send("bob", "2:0", "f@alice#2", ready(value)))
        await asyncio.sleep(0.5)  # bob holds 1:0 and has no room for 2:0 until it is consumed
        await receiver.get("alice", "1:0", "f@alice#1")
        await later
        sent = (await sender.stats())["peers"]["bob"]
        assert sent["values"] == 2 and sent["retries"] >= 1 and sent["failures"] == 0, sent
        assert receiver.stats()["refused"] == sent["retries"]

    with_bob(test, chunk_size_in_bytes=1024, max_buffered_bytes=CAP)


def test_a_long_push_logs_its_progress_every_few_seconds_not_every_chunk(monkeypatch, caplog):
    from faultproxy import FaultProxy

    monkeypatch.setattr(Progress, "EVERY_S", 0.5)
    alice, bob = configs(timeout_in_ms=10_000)
    value = np.ones(120 * 2**20, dtype=np.uint8)  # over the 100 MiB from which pushes are logged

    async def main():
        with FaultProxy(bob.addresses["bob"]) as proxy:
            proxy.bandwidth(40_000_000)  # about 3 s for the value
            via_proxy = dataclasses.replace(alice, addresses={**alice.addresses, "bob": proxy.address})
            async with serving(bob) as (receiver, _), serving(alice, via_proxy) as (_, (sender,)):
                await sender.send("bob", "1:0", "f@alice#1", ready(value))
                assert (await receiver.get("alice", "1:0", "f@alice#1")).nbytes == value.nbytes

    with caplog.at_level(logging.INFO, logger="fed"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if "push of 1:0" in r.getMessage() and "% (" in r.getMessage()]
    # 30 chunks of 4 MiB, logged about every 0.5 s of some 3 s.
    assert 2 <= len(lines) <= 10, lines
    for line in lines:
        assert re.fullmatch(r"push of 1:0 \(f@alice#1\) to bob: \d+% \(\d+ of 126 MB\), [\d.]+ MB/s, "
                            r"about \d+ s left", line), line
    percents = [int(re.search(r"(\d+)%", line).group(1)) for line in lines]
    assert percents == sorted(percents) and percents[-1] < 100, percents
