"""The public face: __all__, decorating, binding without mutation, and misuse errors (no Ray started)."""

from __future__ import annotations

import threading

import pytest

import fed


@fed.remote
def add(a, b):
    return a + b


@fed.remote
class Counter:
    def __init__(self, n):
        self.n = n

    def inc(self, k):
        self.n += k
        return self.n


def test_all_is_sorted_and_complete():
    public = {name for name in dir(fed) if not name.startswith("_")} - {"annotations"}

    assert fed.__all__ == sorted(fed.__all__)
    assert public == set(fed.__all__)


def test_party_and_options_return_new_objects_and_never_mutate():
    bound = add.party("alice")
    tuned = bound.options(num_cpus=1, num_returns=2)

    assert add._party is None and add._options == {}
    assert bound._party == "alice" and bound._options == {}
    assert tuned._party == "alice" and tuned._options == {"num_cpus": 1, "num_returns": 2}
    assert Counter.party("bob")._party == "bob" and Counter._party is None


def test_binding_from_threads_does_not_interfere():
    seen = {}

    def bind(party):
        seen[party] = add.party(party).options(num_cpus=0)._party

    threads = [threading.Thread(target=bind, args=(p,)) for p in ("a", "b", "c", "d")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert seen == {p: p for p in "abcd"} and add._party is None


def test_calling_directly_says_how_to_call():
    with pytest.raises(TypeError, match=r"add.party\('alice'\).remote"):
        add(1, 2)
    with pytest.raises(TypeError, match=r"Counter.party\('alice'\).remote"):
        Counter(1)


def test_invalid_ray_options_are_rejected_by_name():
    with pytest.raises(ValueError, match="num_cpuz"):
        add.options(num_cpuz=1)
    with pytest.raises(ValueError, match="num_returns"):
        add.options(num_returns="dynamic")


def test_decorator_with_options():
    @fed.remote(num_cpus=0)
    def f():
        return 1

    assert f._options == {"num_cpus": 0}


def test_remote_before_init_is_a_clear_error():
    with pytest.raises(RuntimeError, match="fed.init"):
        add.party("alice").remote(1, 2)
    with pytest.raises(ValueError, match="party"):
        add.remote(1, 2)


def test_fed_object_cannot_be_pickled():
    import pickle

    obj = fed.FedObject("alice", 1, 0, "f@alice#1")

    with pytest.raises(TypeError, match="fed.get"):
        pickle.dumps(obj)
    assert obj.object_id == "1:0"
