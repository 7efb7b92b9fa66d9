"""The owner's answer to "will you send this value?" (fed._transport.pushed)."""

from __future__ import annotations

from fed._transport import pushed
from fed._transport.pushed import Pushed


def test_a_value_not_pushed_will_not_come_only_once_the_owner_made_more_calls_than_the_waiter_had():
    ledger = Pushed()
    ledger.add([("bob", "1:0")])
    waits = [("1:0", 3), ("2:0", 3)]

    assert ledger.will_not_come("bob", waits, calls=3) == []  # not past the point where it pushes yet
    assert ledger.will_not_come("bob", waits, calls=4) == [1]  # 1:0 was pushed; 2:0 (place 1) was not
    assert ledger.will_not_come("carol", waits, calls=4) == [0, 1]  # pushed to bob, not carol


def test_a_failed_push_counts_as_never_coming():
    ledger = Pushed()
    ledger.add([("bob", "1:0"), ("bob", "2:0")])
    ledger.add([], failed=[("bob", "2:0"), ("carol", "9:0")])

    assert ledger.will_not_come("bob", [("1:0", 0), ("2:0", 0)], calls=5) == [1]


def test_past_its_limit_the_ledger_answers_nothing(monkeypatch):
    monkeypatch.setattr(pushed, "LIMIT", 2)
    ledger = Pushed()
    ledger.add([("bob", "1:0"), ("bob", "1:0"), ("bob", "2:0")])  # a repeat counts once
    assert ledger.complete
    assert ledger.will_not_come("bob", [("3:0", 0)], calls=5) == [0]

    ledger.add([("bob", "3:0")])
    assert not ledger.complete
    assert ledger.will_not_come("bob", [("4:0", 0)], calls=5) == []
