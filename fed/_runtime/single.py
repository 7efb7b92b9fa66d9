"""Single-controller mode: one process plays every party (development, debugging, simulation).

The script runs once. Each party's tasks and actors run in one Ray cluster, placed with a custom
resource named for the party (``fed_party_<name>``). A value that one party's call hands to
another party goes through what a push does between real parties: fed's codec (with this
party's registered types and allow-list), and the size limit, in an actor (``Crossing``), once
per value. So a script that works here
works across real parties, short of the network; nothing listens on the parties' addresses.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

import ray

from fed._config import FedConfig
from fed._exceptions import FedError, FedSendError, seen_elsewhere
from fed._runtime.base import RuntimeBase, fed_objects_in, map_fed_objects
from fed._runtime.objects import FedObject
from fed._serialization import codec
from fed._serialization.policy import Policy, make_policy
from fed._transport import metrics, wire

logger = logging.getLogger("fed")

ENV = "FED_SINGLE_CONTROLLER"
_CAPACITY = 1000.0  # of each party's resource; every task or actor takes _SHARE of it
# A Ray that fed starts gets a resource per party only for up to this many parties: Ray's
# scheduler slows with every custom resource (1,000 parties: 28 s a round instead of about 1 s,
# the raylet at a full core), and on one node the resources place nothing anyway.
PLACED_AT_MOST = 16
_SHARE = 0.001


def resource(party: str) -> str:
    """The Ray custom resource that places ``party``'s tasks and actors."""
    return f"fed_party_{party}"


def ray_resources(parties: list[str]) -> dict[str, float]:
    """What ``ray.init(resources=...)`` needs for single-controller mode with ``parties``."""
    return {resource(p): _CAPACITY for p in parties}


def wanted(argument: bool | None, parties: list[str]) -> bool:
    """Whether to run in single-controller mode: the ``fed.init`` argument, else the environment
    variable (``1``, or the comma-separated parties, which must be the job's)."""
    if argument is not None:
        return argument
    value = os.environ.get(ENV, "").strip()
    if value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    named = [p.strip() for p in value.split(",") if p.strip()]
    if sorted(named) != sorted(parties):
        raise ValueError(f"{ENV}={value!r} names parties {named}, but the script's cluster has {sorted(parties)}; "
                         "give fed run --single the script's parties")
    return True


class Crossing:
    """Crosses values from one party to another as a push would, in an async actor: a value not
    made yet is awaited without holding a worker process (a task would block one per value)."""

    def __init__(self, policy: Policy, limit: int, expose_error_trace: bool) -> None:
        self._policy, self._limit, self._expose = policy, limit, expose_error_trace

    async def cross_many(self, refs: list, names: list[tuple[str, str, str]]) -> list[Any]:
        """``cross`` of several values (each ``names`` entry: source party, object id, fingerprint)."""
        return list(await asyncio.gather(*(self.cross([ref], *name) for ref, name in zip(refs, names))))

    async def cross(self, wrapped: list, src: str, object_id: str, fingerprint: str) -> Any:
        """The value of ``wrapped[0]`` as another party would receive it from ``src``, or the error
        it would see instead."""
        try:
            value = await wrapped[0]
        except Exception as exc:  # noqa: BLE001 - the producing task failed: others see FedRemoteError
            raise seen_elsewhere(exc, src, self._expose) from None
        try:
            segments, copied = codec.encode(value, self._policy.types, by_value=self._policy.unsafe)
        except codec.EncodeError as exc:
            raise FedSendError(f"value {object_id} ({fingerprint}) cannot leave party {src!r}: {exc}") from None
        size = wire.payload_size(segments)
        if size > self._limit:
            raise FedSendError(f"value {object_id} ({fingerprint}) is {size} bytes, over "
                               f"messages_max_size_in_bytes={self._limit}; it cannot leave party {src!r}")
        try:
            return codec.decode(segments, self._policy, copied)
        except codec.DecodeError as exc:  # a receiving party would refuse it
            detail = f" ({exc.detail})" if exc.detail else ""
            raise FedError(f"value {object_id} ({fingerprint}) from party {src!r} would be refused by the "
                           f"party receiving it: {exc}{detail}") from None


class SingleRuntime(RuntimeBase):
    """Every party of the job, in this process; ``placed`` if Ray has the parties' resources."""

    def __init__(self, config: FedConfig, owns_ray: bool, placed: bool) -> None:
        super().__init__(config, owns_ray)
        comm = config.comm
        policy = make_policy(config.types, comm.serializing_allowed_list, comm.allow_unsafe_deserialization)
        self._crossing = ray.remote(Crossing).options(num_cpus=0, max_concurrency=1000).remote(
            policy, comm.messages_max_size_in_bytes, comm.expose_error_trace)
        self._placed = placed
        self._crossing_lock = threading.RLock()

    def runs_here(self, party: str) -> bool:
        return True

    def placement(self, party: str, options: dict[str, Any], actor: bool = False) -> dict[str, Any]:
        if not self._placed:
            return options
        placed = {**options, "resources": {**(options.get("resources") or {}), resource(party): _SHARE}}
        if actor and "num_cpus" not in options:
            # Ray's default actor holds no CPU while it runs; one with a custom resource would hold
            # one, and a few parties' actors would leave no CPU for their tasks.
            placed["num_cpus"] = 0
        return placed

    def resolve(self, args: tuple, kwargs: dict, party: str) -> tuple[tuple, dict]:
        """A call's arguments: its own party's values as they are, other parties' as they would
        arrive, crossed in one actor call for the call (their refs resolve together, and if one of
        them fails, each raises its error, as values a receiver actor hands out for one call do)."""
        objects = fed_objects_in((args, kwargs))
        for obj in objects:
            self.check_session(obj)
        self._cross_all([obj for obj in objects if obj.owner != party])

        def to_ref(obj: FedObject) -> Any:
            return obj._ref if obj.owner == party else obj._received
        return map_fed_objects(args, to_ref), map_fed_objects(kwargs, to_ref)

    def _cross_all(self, objects: list[FedObject]) -> None:
        """Cross the values of ``objects`` not crossed yet: one actor call for them all."""
        with self._crossing_lock:
            new = list({id(obj): obj for obj in objects if obj._received is None}.values())
            if len(new) == 1:
                self._crossed(new[0])
            elif new:
                refs = self._crossing.cross_many.options(num_returns=len(new)).remote(
                    [obj._ref for obj in new], [(obj.owner, obj.object_id, obj.fingerprint) for obj in new])
                for obj, ref in zip(new, refs):
                    obj._received = ref

    def get(self, objects: list[FedObject]) -> list[Any]:
        """Each value as the other parties would receive it; a failed task raises its own error."""
        for obj in objects:
            self.check_session(obj)
        if len(self.config.addresses) == 1:
            return ray.get([obj._ref for obj in objects])
        try:
            return ray.get([self._crossed(obj) for obj in objects])
        except ray.exceptions.RayTaskError:
            ray.get([obj._ref for obj in objects])  # a task failed: raise its error as its owner would
            raise  # the value cannot cross to another party

    def _crossed(self, obj: FedObject) -> Any:
        """The ObjectRef of ``obj``'s value after crossing to another party (made once per value)."""
        with self._crossing_lock:
            if obj._received is None:
                obj._received = self._crossing.cross.remote([obj._ref], obj.owner, obj.object_id, obj.fingerprint)
            return obj._received

    def stats(self) -> dict[str, Any]:
        """Nothing goes over a network in single-controller mode: no peers to count."""
        return metrics.combine(self.config.job_name, self.party, [], {}, {})

    def stop(self, failure: BaseException | None, push_wait: float | None = None) -> None:
        """No proxies, no peers to tell: only the crossing actor to stop."""
        ray.kill(self._crossing)
