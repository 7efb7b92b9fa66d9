"""``fed.send`` and ``fed.recv``: values moved by hand, with ids the program chooses (RayFed 0.2).

    fed.send('bob', ref, upstream_seq_id=7, downstream_seq_id=8)    # at alice
    ref = fed.recv('bob', 'alice', upstream_seq_id=7, curr_seq_id=8)   # at bob: a Ray ObjectRef

A pair matches on ``(source party, upstream id, downstream id)``; ids are ints or strings. The
value crosses as any push does (fed's codec, caps, TLS identity, exactly once: a second send of a
pair is dropped as a duplicate, a second ``recv`` of it is an error). These values are outside the
program's call numbering, so the divergence and never-sent checks do not cover them.
"""

from __future__ import annotations

import uuid
from typing import Any

import ray

from fed._runtime import context
from fed._runtime.objects import FedObject
from fed._transport import wire


def send(dest_party: str, data: Any, upstream_seq_id: int | str, downstream_seq_id: int | str,
         is_error: bool = False, check_sending: bool = True) -> ray.ObjectRef:
    """Push ``data`` (a value, a Ray ObjectRef, or a FedObject this party owns) to ``dest_party``.

    Returns a Ray ObjectRef of True once delivered, False if the push failed (the failure also
    reaches ``sending_failure_handler`` and the audit log). ``check_sending`` is accepted and has no
    effect: every push is watched; ``is_error=True`` is refused.
    """
    if is_error:
        raise ValueError("fed.send(is_error=True) is not supported: send the exception from a task that raises it, "
                         "and the peer gets FedRemoteError")
    runtime = _multi()
    runtime.check_party(dest_party)
    if dest_party == runtime.party:
        raise ValueError(f"fed.send to {dest_party!r}, this party itself: send to a peer")
    object_id, fingerprint = _pair(runtime.party, upstream_seq_id, downstream_seq_id)
    if isinstance(data, FedObject):
        if data.owner != runtime.party:
            raise ValueError(f"fed.send of {data!r}: only its owner {data.owner!r} can send it")
        runtime.check_session(data)
        ref = context.own_ref(data)
    else:
        ref = data if isinstance(data, ray.ObjectRef) else ray.put(data)
    push = runtime.push_ref(dest_party, object_id, fingerprint, ref)
    token = uuid.uuid4().hex
    handoff = runtime.handoff()
    outcome = handoff.wait.remote(token)
    push.add_done_callback(lambda done: handoff.fill.remote(token, not done.cancelled() and done.exception() is None))
    return outcome


def recv(party: str, src_party: str, upstream_seq_id: int | str, curr_seq_id: int | str) -> ray.ObjectRef:
    """The Ray ObjectRef of the value ``src_party`` sends to ``party`` (this party) with these ids."""
    runtime = _multi()
    if party != runtime.party:
        raise ValueError(f"fed.recv(party={party!r}) runs at party {runtime.party!r}: pass this party's name")
    runtime.check_party(src_party)
    if src_party == runtime.party:
        raise ValueError(f"fed.recv from {src_party!r}, this party itself: receive from a peer")
    object_id, fingerprint = _pair(src_party, upstream_seq_id, curr_seq_id)
    receiver = runtime.receiver
    if not receiver.in_driver:
        return receiver.get_ref(src_party, object_id, fingerprint)
    handoff, token = runtime.handoff(), uuid.uuid4().hex
    ref = handoff.wait.remote(token)
    receiver.get(src_party, object_id, fingerprint).add_done_callback(
        lambda got: handoff.fill.remote(token, None if got.exception() else got.result()[0], got.exception()))
    return ref


def _multi() -> context.Runtime:
    runtime = context.current()
    if not isinstance(runtime, context.Runtime):
        raise RuntimeError("fed.send and fed.recv need one process per party; in single-controller mode pass "
                           "values as arguments of .remote() calls instead")
    return runtime


def _pair(src: str, upstream: Any, downstream: Any) -> tuple[str, str]:
    """The object id and fingerprint both ends derive from a pair of ids."""
    for name, value in (("upstream_seq_id", upstream), ("downstream_seq_id", downstream)):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"fed.send/fed.recv: {name} must be an int or a str, got {value!r}")
    object_id = f"send:{upstream}:{downstream}"
    if not wire.printable(object_id, wire.MAX_OBJECT_ID):
        raise ValueError(f"fed.send/fed.recv: ids {upstream!r}, {downstream!r} must be printable and together "
                         f"under {wire.MAX_OBJECT_ID - 6} characters")
    return object_id, f"fed.send@{src}#{upstream}>{downstream}"
