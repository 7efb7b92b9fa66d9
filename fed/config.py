"""What a job was given, as RayFed 0.2's ``fed.config`` tells it.

    >>> fed.config.get_job_config().cross_silo_comm_config_dict   # doctest: +SKIP
    {'timeout_in_ms': 120000}

Each ``fed.init`` in this process records its job here; the record outlives ``fed.shutdown`` (as
RayFed's lives in Ray's key-value store until Ray stops) and a new ``fed.init`` of the same job
replaces it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

_jobs: dict[str, dict[str, Any]] = {}
_last: str | None = None


class JobConfig:
    """The job's ``config['cross_silo_comm']``, as given to ``fed.init``."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._record = record

    @property
    def cross_silo_comm_config_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._record["cross_silo_comm"])


class ClusterConfig:
    """The job's parties (``{party: {'address': ...}}``), this party, and its ``tls_config``."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._record = record

    @property
    def cluster_addresses(self) -> dict[str, dict[str, str]]:
        return copy.deepcopy(self._record["cluster"])

    @property
    def current_party(self) -> str:
        return self._record["party"]

    @property
    def tls_config(self) -> dict[str, str] | None:
        return copy.deepcopy(self._record["tls_config"])


def get_job_config(job_name: str | None = None) -> JobConfig:
    """The config of job ``job_name`` (default: the job this process initialised last)."""
    return JobConfig(_record(job_name))


def get_cluster_config(job_name: str | None = None) -> ClusterConfig:
    """The parties of job ``job_name`` (default: the job this process initialised last)."""
    return ClusterConfig(_record(job_name))


def remember(job_name: str, party: str, addresses: Mapping[str, str], comm: Mapping[str, Any] | None,
             tls_config: Mapping[str, str] | None) -> None:
    """Called by ``fed.init`` once the job's config is valid."""
    global _last
    _jobs[job_name] = {"party": party, "cluster": {p: {"address": a} for p, a in addresses.items()},
                       "cross_silo_comm": copy.deepcopy(dict(comm or {})),
                       "tls_config": dict(tls_config) if tls_config is not None else None}
    _last = job_name


def _record(job_name: str | None) -> dict[str, Any]:
    name = _last if job_name is None else job_name
    if name is None:
        raise RuntimeError("no job was initialised in this process: call fed.init(...) first")
    if name not in _jobs:
        raise ValueError(f"no job named {name!r} was initialised in this process; jobs: {sorted(_jobs)}")
    return _jobs[name]
