"""The running digest of a party's calls, and finding the first call where two parties differ."""

from __future__ import annotations

import pytest

from fed._transport.call_log import KEEP, CallLog, first_difference


def log_of(*fingerprints):
    log = CallLog()
    for fp in fingerprints:
        log.add(fp)
    return log


def test_same_calls_give_the_same_digests_and_a_difference_stays():
    a = log_of("f@alice#1", "g@bob#2", "h@bob#3")
    b = log_of("f@alice#1", "x@bob#2", "h@bob#3")
    assert a.digest(1) == b.digest(1)
    assert a.digest(2) != b.digest(2) and a.digest(3) != b.digest(3)


@pytest.mark.parametrize("n, at", [(1, 1), (50, 1), (50, 17), (50, 50), (1001, 734)])
def test_first_difference_finds_the_first_differing_call(n, at):
    calls = [f"f@alice#{i}" for i in range(1, n + 1)]
    other = list(calls)
    other[at - 1] = f"g@bob#{at}"
    assert first_difference(log_of(*calls).digests(n), log_of(*other).digests(n)) == at


def test_no_difference_is_zero_and_only_the_common_prefix_counts():
    a = log_of("f@alice#1", "g@bob#2")
    b = log_of("f@alice#1", "g@bob#2", "h@bob#3")
    assert first_difference(a.digests(2), b.digests(3)) == 0
    assert first_difference(b"", b.digests(3)) == 0


def test_the_receiver_copy_follows_the_driver_in_steps():
    driver, receiver = CallLog(), CallLog()
    for i in range(1, 4):
        driver.add(f"f@alice#{i}")
    receiver.extend(*driver.take_new())
    driver.add("g@bob#4")
    receiver.extend(*driver.take_new())
    receiver.extend(*driver.take_new())  # nothing new
    assert len(receiver) == 4 and receiver.digest(4) == driver.digest(4)
    assert receiver.fingerprint(4) == "g@bob#4" and receiver.fingerprint(1) == "f@alice#1"
    with pytest.raises(ValueError, match="out of step"):
        receiver.extend(2, b"", [])


def test_only_the_last_fingerprints_are_kept_but_every_digest_is():
    driver, receiver = CallLog(), CallLog()
    for i in range(1, KEEP + 6):
        driver.add(f"f@alice#{i}")
    receiver.extend(*driver.take_new())
    assert len(receiver) == KEEP + 5 and receiver.digest(KEEP + 5) == driver.digest(KEEP + 5)
    assert receiver.fingerprint(5) is None and receiver.fingerprint(6) == "f@alice#6"
    assert receiver.fingerprint(KEEP + 5) == f"f@alice#{KEEP + 5}"
