"""Calls at bob that take values alice has not sent yet (bob's receiver runs in his driver, so
they are held there until the values arrive). Each party prints HELD OK.

* bob's actor gets a call that waits for a slow value of alice's, then calls that take only
  bob's own values: the actor runs them in the order the program made them;
* an actor created from a value that has not arrived yet, called at once;
* a task chained on a held call's result, and that result pushed back to alice;
* a value of alice's whose task failed: bob's task that takes it fails with alice's error;
* ``get_ray_object_ref`` of a held call's result, and ``fed.send``/``fed.recv``.
"""

from __future__ import annotations

import time

import ray
from common import add, args, cluster, make

import fed
from fed.exceptions import FedRemoteError


@fed.remote
def slow(x, seconds):
    time.sleep(seconds)
    return x


@fed.remote
def fail():
    raise ValueError("alice's task failed")


@fed.remote
class Log:
    def __init__(self, first=None):
        self.seen = [] if first is None else [first]

    def note(self, x):
        self.seen.append(x)
        return x

    def all(self):
        return list(self.seen)


def main() -> None:
    party, addrs, _ = args()
    fed.init(address="local", cluster=cluster(addrs), party=party, config={"cross_silo_comm": {
        "expose_error_trace": True}})

    log = Log.party("bob").remote()
    late = slow.party("alice").remote("late", 1.5)
    log.note.remote(late)                     # held at bob until 'late' arrives
    for i in range(5):
        log.note.remote(make.party("bob").remote(i))  # bob's own values: behind it, same actor
    assert fed.get(log.all.remote()) == ["late", 0, 1, 2, 3, 4], "actor order"

    created = Log.party("bob").remote(slow.party("alice").remote("first", 1.0))  # creation held
    created.note.remote("second")
    assert fed.get(created.all.remote()) == ["first", "second"], "held creation"

    chained = add.party("bob").remote(add.party("bob").remote(slow.party("alice").remote(1, 1.0), 10), 100)
    assert fed.get(add.party("alice").remote(chained, 1000)) == 1111, "chain"
    if party == "bob":
        ref = chained.get_ray_object_ref()
        assert ray.get(ref) == 111, "object ref of a held result"

    failed = add.party("bob").remote(fail.party("alice").remote(), 1)
    try:
        fed.get(failed)
    except FedRemoteError as exc:
        assert "alice's task failed" in str(exc), exc
    else:
        raise AssertionError("a task that takes a failed value must fail")

    if party == "alice":
        assert ray.get(fed.send("bob", {"k": 1}, "up", "down")) is True
    else:
        assert ray.get(fed.recv("bob", "alice", "up", "down")) == {"k": 1}
    fed.shutdown()
    print(f"{party} HELD OK", flush=True)


if __name__ == "__main__":
    main()
