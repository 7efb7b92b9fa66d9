"""Calls held until their values from peers arrive (``fed._runtime.held.Held``), without Ray.

Every held call must be given to Ray exactly once, in the order it was held, as soon as its
values and every call before it allow, whichever thread completes the wait; none may be lost.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading

import pytest

from fed._exceptions import FedError
from fed._runtime.held import Held

WAIT_S = 10


def _recorder():
    order: list[int] = []
    threads: list[str] = []
    lock = threading.Lock()

    def submit_of(i: int):
        def submit() -> None:
            with lock:
                order.append(i)
                threads.append(threading.current_thread().name)
        return submit
    return order, threads, submit_of


def _cheap() -> bool:
    return True


def test_a_call_with_nothing_to_wait_for_is_given_to_ray_in_the_callers_thread():
    held = Held()
    order, threads, submit_of = _recorder()
    made = held.hold([], _cheap, submit_of(1))
    assert made.done() and order == [1] and threads == [threading.current_thread().name]


def test_held_calls_go_in_the_order_they_were_held_whatever_order_their_values_arrive_in():
    held = Held()
    order, _, submit_of = _recorder()
    values = [concurrent.futures.Future() for _ in range(3)]
    made = [held.hold([values[i]], _cheap, submit_of(i)) for i in range(3)]
    values[2].set_result(None)
    values[1].set_result(None)
    assert order == [] and not any(m.done() for m in made)  # the first still waits
    values[0].set_result(None)
    assert order == [0, 1, 2] and all(m.done() for m in made)


def test_a_call_waits_for_every_one_of_its_values():
    held = Held()
    order, _, submit_of = _recorder()
    first, second = concurrent.futures.Future(), concurrent.futures.Future()
    made = held.hold([first, second], _cheap, submit_of(1))
    first.set_result(None)
    assert order == [] and not made.done()
    second.set_exception(RuntimeError("the peer is gone"))  # an error is an arrival too: the call carries it
    assert order == [1] and made.done() and made.exception() is None


def test_no_held_call_is_lost_or_run_twice_when_values_arrive_from_many_threads_at_once():
    held = Held()
    order, _, submit_of = _recorder()
    n = 2000
    values = [concurrent.futures.Future() for _ in range(n)]
    made = []
    rng = random.Random(7)

    def arrive(chunk: list[concurrent.futures.Future]) -> None:
        for value in chunk:
            value.set_result(None)
    shuffled = values[:]
    rng.shuffle(shuffled)
    chunks = [shuffled[i::4] for i in range(4)]
    threads = [threading.Thread(target=arrive, args=(chunk,)) for chunk in chunks]
    for i in range(n):  # holding goes on while the values arrive
        made.append(held.hold([values[i], values[rng.randrange(n)]], _cheap, submit_of(i)))
        if i == n // 2:
            for thread in threads:
                thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    concurrent.futures.wait(made, timeout=WAIT_S)
    assert order == list(range(n))
    assert all(m.done() and m.exception() is None for m in made)
    assert len(held) == 0


def test_a_call_that_puts_large_values_in_ray_is_given_to_ray_by_the_helper_thread():
    held = Held()
    order, threads, submit_of = _recorder()
    value = concurrent.futures.Future()
    small = held.hold([value], _cheap, submit_of(1))
    large = held.hold([], lambda: False, submit_of(2))
    arrival = threading.Thread(target=value.set_result, args=(None,), name="the-receivers-loop")
    arrival.start()
    arrival.join(WAIT_S)
    concurrent.futures.wait([small, large], timeout=WAIT_S)
    assert order == [1, 2]
    assert threads[0] == "the-receivers-loop" and threads[1].startswith("fed-held-calls")


def test_stop_fails_the_calls_still_held_and_refuses_new_ones():
    held = Held()
    order, _, submit_of = _recorder()
    never = concurrent.futures.Future()
    made = held.hold([never], _cheap, submit_of(1))
    assert held.stop(timeout=1) == 1
    with pytest.raises(FedError, match="never ran"):
        made.result(0)
    never.set_result(None)  # arriving after the stop runs nothing
    assert order == []
    with pytest.raises(FedError, match="shutting down"):
        held.hold([], _cheap, submit_of(2))


def test_a_call_held_while_another_thread_gives_calls_to_ray_does_not_lose_the_wait_after_it():
    # The interleaving that once lost a call: while one thread submits, a call is held (so the
    # submitting thread looks again before it stops), and the next call waits on a value.
    held = Held()
    order, _, submit_of = _recorder()
    first, second = concurrent.futures.Future(), concurrent.futures.Future()

    def submit_first() -> None:
        submit_of(1)()
        held.hold([], _cheap, submit_of(3))  # another thread's .remote(), in the middle of the drain
    made = [held.hold([first], _cheap, submit_first), held.hold([second], _cheap, submit_of(2))]
    first.set_result(None)
    assert order == [1]
    second.set_result(None)
    assert order == [1, 2, 3] and all(m.done() for m in made)
