"""Validate and normalise the arguments of ``fed.init`` into one frozen ``FedConfig``."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fed._config_grpc import DEFAULT_RETRY, RetryPolicy, parse_channel_options, parse_retry_policy
from fed._keys import reject_unknown as _reject_unknown
from fed._serialization.registry import NONE, Types
from fed._serialization.restricted import compile_allowed

_PARTY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_JOB_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DEFAULT_JOB_NAME = "default"
MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class CommConfig:
    """Cross-silo communication settings (``config['cross_silo_comm']``)."""

    timeout_in_ms: int = 60_000
    messages_max_size_in_bytes: int = 16 * GiB
    serializing_allowed_list: Mapping[str, list[str]] | None = None
    exit_on_sending_failure: bool = False
    expose_error_trace: bool = False
    http_header: Mapping[str, str] | None = None
    max_concurrency: int = 1000
    send_resource_label: Mapping[str, float] | None = None
    recv_resource_label: Mapping[str, float] | None = None
    use_global_proxy: bool = True
    chunk_size_in_bytes: int = 4 * MiB
    inflight_window_in_bytes: int = 32 * MiB
    max_buffered_bytes: int = 32 * GiB
    allow_unsafe_deserialization: bool = False
    liveness_timeout_in_ms: int = 5000
    max_wait_in_ms: int | None = None
    compression: str | Mapping[str, str | None] | None = None  # of pushes to all peers, or per peer
    compression_level: int = 1
    # RayFed 0.2's keys (README, 'Coming from RayFed'):
    continue_waiting_for_data_sending_on_error: bool = False
    grpc_retry_policy: RetryPolicy = DEFAULT_RETRY
    grpc_channel_options: tuple[tuple[str, int | str], ...] = ()
    proxy_max_restarts: int | None = None


@dataclass(frozen=True)
class TlsConfig:
    """The PEM files for mutual TLS, read once at ``fed.init``, and the name each party's
    certificate carries where it is not the party's own (``party_cert_names``)."""

    ca_cert: bytes
    cert: bytes
    key: bytes
    cert_names: Mapping[str, str] = field(default_factory=dict)

    def name_of(self, party: str) -> str:
        """The name that party's certificate must carry (by default the party's name)."""
        return self.cert_names.get(party, party)


@dataclass(frozen=True)
class Plugins:
    """RayFed 0.2's proxy classes given to ``fed.init`` (``fed._transport.proxy_link`` runs them),
    and what their constructors take: the job's ``tls_config`` as given and its ``cross_silo_comm``."""

    sender: Any
    receiver: Any
    both: Any = None  # receiver_sender_proxy_cls: one object sends and receives, in the receiver actor
    relay: Any = None  # with ``both``, for the sender: the receiver actor whose proxy it sends through
    tls_config: Mapping[str, Any] | None = None
    comm: Mapping[str, Any] = field(default_factory=dict)

    def proxy_config(self) -> Any:
        from fed.proxy.base_proxy import proxy_config

        return proxy_config(self.comm)


@dataclass(frozen=True)
class FedConfig:
    """Everything ``fed.init`` was told, validated."""

    party: str
    addresses: Mapping[str, str]
    listen_address: str
    job_name: str = DEFAULT_JOB_NAME
    comm: CommConfig = field(default_factory=CommConfig)
    tls: TlsConfig | None = None
    barrier_on_initializing: bool = True
    audit_log_file: str | None = None
    types: Types = NONE  # fed.register_type's registrations when fed.init ran
    logging_level: int = logging.INFO  # fed's log level, also in the receiver and sender actors
    link: str = "grpc"  # what carries the bytes (``fed._transport.link.LINKS``)
    outbound_only: frozenset[str] = frozenset()  # parties that listen nowhere (``fed._transport.reverse``)
    proxy: str | None = None  # the HTTP proxy (CONNECT) this party reaches its peers through
    plugins: Plugins | None = None  # with link "proxy"

    @property
    def peers(self) -> list[str]:
        """Every party but this one, in a fixed order."""
        return [p for p in self.addresses if p != self.party]

    def compression_for(self, dst: str) -> str | None:
        """How this party compresses the pushes it streams to ``dst`` (``cross_silo_comm['compression']``)."""
        chosen = self.comm.compression
        return chosen.get(dst) if isinstance(chosen, Mapping) else chosen


_COMM_TYPES: dict[str, tuple[type, ...]] = {
    "timeout_in_ms": (int,),
    "messages_max_size_in_bytes": (int,),
    "serializing_allowed_list": (dict, type(None)),
    "exit_on_sending_failure": (bool,),
    "expose_error_trace": (bool,),
    "http_header": (dict, type(None)),
    "max_concurrency": (int,),
    "send_resource_label": (dict, type(None)),
    "recv_resource_label": (dict, type(None)),
    "use_global_proxy": (bool,),
    "chunk_size_in_bytes": (int,),
    "inflight_window_in_bytes": (int,),
    "max_buffered_bytes": (int,),
    "allow_unsafe_deserialization": (bool,),
    "liveness_timeout_in_ms": (int,),
    "max_wait_in_ms": (int, type(None)),
    "compression": (str, dict, type(None)),
    "compression_level": (int,),
    "continue_waiting_for_data_sending_on_error": (bool,),
    "grpc_retry_policy": (dict, type(None)),
    "grpc_channel_options": (list, tuple, type(None)),
    "proxy_max_restarts": (int, type(None)),
}
_POSITIVE = ("timeout_in_ms", "messages_max_size_in_bytes", "max_concurrency", "chunk_size_in_bytes",
             "inflight_window_in_bytes", "max_buffered_bytes", "liveness_timeout_in_ms", "max_wait_in_ms")
_CONFIG_KEYS = ("cross_silo_comm", "barrier_on_initializing", "audit_log_file")
_CLUSTER_ENTRY_KEYS = ("address", "listen_addr", "outbound_only", "proxy")
OUTBOUND_ONLY = "outbound only"  # the address of a party that listens nowhere, as logs and errors show it


def parse_address(address: Any, what: str) -> str:
    """Check ``host:port`` (``[v6]:port`` for IPv6) and return it unchanged."""
    if not isinstance(address, str):
        raise ValueError(f"{what}: address must be a 'host:port' string, got {address!r}")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: malformed address {address!r}, expected 'host:port'")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{what}: malformed address {address!r}, expected '[v6]:port'")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{what}: malformed IPv6 host in {address!r}") from None
    elif not re.fullmatch(r"[A-Za-z0-9.-]+", host):
        raise ValueError(f"{what}: malformed host in address {address!r}")
    return address


def check_party_name(party: Any) -> str:
    """Party names are plain identifiers: letters, digits, '.', '_' and '-'."""
    if not isinstance(party, str) or not _PARTY_RE.match(party):
        raise ValueError(
            f"invalid party name {party!r}: use letters, digits, '.', '_' or '-'"
        )
    return party


def parse_comm(raw: Mapping[str, Any] | None) -> CommConfig:
    """Validate ``cross_silo_comm``: unknown keys and wrong types are ``ValueError``."""
    raw = dict(raw or {})
    known = [f.name for f in dataclasses.fields(CommConfig)]
    _reject_unknown("cross_silo_comm", raw, known)
    for key, value in raw.items():
        types = _COMM_TYPES[key]
        if not isinstance(value, types) or (int in types and isinstance(value, bool) and bool not in types):
            names = " or ".join(t.__name__ for t in types)
            raise ValueError(f"cross_silo_comm[{key!r}] must be {names}, got {value!r}")
        if key in _POSITIVE and value is not None and value <= 0:
            raise ValueError(f"cross_silo_comm[{key!r}] must be positive, got {value!r}")
    allowed = raw.get("serializing_allowed_list")
    if allowed is not None:
        for module, names in allowed.items():
            if not isinstance(module, str) or not isinstance(names, (list, tuple, set)):
                raise ValueError(
                    "serializing_allowed_list maps a module name to a list of names "
                    f"(or ['*']), got {module!r}: {names!r}"
                )
        raw["serializing_allowed_list"] = {m: list(n) for m, n in allowed.items()}
        compile_allowed(raw["serializing_allowed_list"])  # a dotted or malformed name is a ValueError now
    if "grpc_retry_policy" in raw:
        raw["grpc_retry_policy"] = parse_retry_policy(raw["grpc_retry_policy"])
    if "grpc_channel_options" in raw:
        raw["grpc_channel_options"] = parse_channel_options(raw["grpc_channel_options"])
    _check_compression(raw)
    restarts = raw.get("proxy_max_restarts")
    if restarts is not None and restarts < -1:
        raise ValueError(f"cross_silo_comm['proxy_max_restarts'] must be -1 (no limit), 0 or more, got {restarts!r}")
    return CommConfig(**raw)


def _check_compression(raw: dict[str, Any]) -> None:
    """``compression``: a codec for pushes to every peer, or ``{peer: codec or None}``; its codec
    must be installed here. ``compression_level``: zstd's, 1 (fastest) to 19."""
    from fed._transport import compression

    chosen = raw.get("compression")
    if isinstance(chosen, dict):
        for peer, name in chosen.items():
            if name is not None:
                compression.require(name, f"cross_silo_comm['compression'][{peer!r}]")
    elif chosen is not None:
        compression.require(chosen, "cross_silo_comm['compression']")
    level = raw.get("compression_level", 1)
    if level not in compression.LEVELS:
        raise ValueError(f"cross_silo_comm['compression_level'] must be 1 (fastest) to 19, got {level!r}")


def read_tls(tls_config: Mapping[str, Any] | None, parties: Iterable[str] = ()) -> TlsConfig | None:
    """Read the three PEM files named by ``tls_config`` (and its names of the ``parties``' certificates)."""
    if tls_config is None:
        return None
    if not isinstance(tls_config, Mapping):
        raise ValueError("tls_config must be a dict with 'ca_cert', 'cert' and 'key' paths")
    keys = ("ca_cert", "cert", "key")
    _reject_unknown("tls_config", tls_config, (*keys, "party_cert_names"))
    missing = [k for k in keys if k not in tls_config]
    if missing:
        raise ValueError(f"tls_config is missing {missing}; mutual TLS needs 'ca_cert', 'cert' and 'key'")
    contents = {}
    for key in keys:
        try:
            with open(tls_config[key], "rb") as f:
                contents[key] = f.read()
        except OSError as exc:
            raise ValueError(f"tls_config[{key!r}]: cannot read {tls_config[key]!r}: {exc}") from exc
    return TlsConfig(**contents, cert_names=_cert_names(tls_config.get("party_cert_names"), parties))


def _cert_names(raw: Any, parties: Iterable[str]) -> dict[str, str]:
    """``tls_config['party_cert_names']``: party -> the DNS name its certificate carries."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("tls_config['party_cert_names'] maps each party to the name its certificate carries, "
                         f"e.g. {{'bob': 'bob.example.org'}}, got {raw!r}")
    _reject_unknown("tls_config['party_cert_names']", raw, list(parties))
    for party, name in raw.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", name):
            raise ValueError(f"tls_config['party_cert_names'][{party!r}] must be a DNS name, got {name!r}")
    return dict(raw)


def _addresses_from_cluster(cluster: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str], dict[str, dict]]:
    addresses, listen, extra = {}, {}, {}
    for party, entry in cluster.items():
        check_party_name(party)
        if isinstance(entry, str):
            entry = {"address": entry}
        if not isinstance(entry, Mapping):
            raise ValueError(f"cluster[{party!r}] must be a dict with an 'address', got {entry!r}")
        _reject_unknown(f"cluster[{party!r}]", entry, _CLUSTER_ENTRY_KEYS)
        outbound_only = entry.get("outbound_only", False)
        if not isinstance(outbound_only, bool):
            raise ValueError(f"cluster[{party!r}]['outbound_only'] must be True or False, got {outbound_only!r}")
        if outbound_only:
            if "address" in entry or "listen_addr" in entry:
                raise ValueError(f"cluster[{party!r}] is outbound_only: it listens nowhere, so it has no "
                                 "'address' or 'listen_addr'; leave them out")
            addresses[party] = OUTBOUND_ONLY
        elif "address" not in entry:
            raise ValueError(f"cluster[{party!r}] must have an 'address' (or 'outbound_only': True for a party "
                             "that accepts no connections)")
        else:
            addresses[party] = parse_address(entry["address"], f"cluster[{party!r}]['address']")
        if "listen_addr" in entry:
            listen[party] = parse_address(entry["listen_addr"], f"cluster[{party!r}]['listen_addr']")
        extra[party] = {"outbound_only": outbound_only, "proxy": _proxy(entry.get("proxy"), party)}
    return addresses, listen, extra


def _proxy(proxy: Any, party: str) -> str | None:
    """``cluster[party]['proxy']``: ``http://host:port`` of an HTTP proxy that takes CONNECT."""
    if proxy is None:
        return None
    if not isinstance(proxy, str) or not proxy.startswith("http://"):
        raise ValueError(f"cluster[{party!r}]['proxy'] must be 'http://host:port' (an HTTP proxy that takes "
                         f"CONNECT), got {proxy!r}")
    hostport = proxy[len("http://"):].rstrip("/")
    parse_address(hostport, f"cluster[{party!r}]['proxy']")
    return f"http://{hostport}"


def _check_outbound_only(party: str, outbound_only: frozenset[str], addrs: Mapping[str, str],
                         comm: CommConfig) -> None:
    """Parties that listen nowhere reach each other through no one: at most one of them, and a
    listening party that serves one keeps its sender and receiver in one process."""
    if len(outbound_only) > 1:
        raise ValueError(f"parties {sorted(outbound_only)} are all outbound_only: two parties that both "
                         "accept no connections cannot reach each other; at most one party may be outbound_only")
    if outbound_only and len(addrs) < 2:
        raise ValueError("an outbound_only party needs a peer that listens")
    if outbound_only - {party}:
        labels = [k for k in ("send_resource_label", "recv_resource_label") if getattr(comm, k)]
        if comm.proxy_max_restarts is not None:
            labels.append("proxy_max_restarts")
        if labels:
            raise ValueError(f"party {sorted(outbound_only)[0]!r} is outbound_only, so its values reach this party's "
                             f"receiver and its calls leave from it: this party's sender and receiver must run in "
                             f"the driver; leave out cross_silo_comm {labels}")


def build_config(
    *,
    party: Any,
    cluster: Mapping[str, Any] | None = None,
    addresses: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    tls_config: Mapping[str, Any] | None = None,
    job_name: str | None = None,
    types: Types = NONE,
    logging_level: int = logging.INFO,
) -> FedConfig:
    """Normalise either form of ``fed.init`` arguments into a ``FedConfig``."""
    if (cluster is None) == (addresses is None):
        raise ValueError("pass exactly one of cluster={party: {'address': ...}} or addresses={party: 'host:port'}")
    if cluster is not None:
        if not isinstance(cluster, Mapping) or not cluster:
            raise ValueError("cluster must be a non-empty dict of party -> {'address': 'host:port'}")
        addrs, listen, extra = _addresses_from_cluster(cluster)
    else:
        if not isinstance(addresses, Mapping) or not addresses:
            raise ValueError("addresses must be a non-empty dict of party -> 'host:port'")
        addrs = {check_party_name(p): parse_address(a, f"addresses[{p!r}]") for p, a in addresses.items()}
        listen, extra = {}, {}
    check_party_name(party)
    if party not in addrs:
        raise ValueError(f"party {party!r} is not one of the configured parties {sorted(addrs)}")
    config = dict(config or {})
    _reject_unknown("config", config, _CONFIG_KEYS)
    barrier = config.get("barrier_on_initializing", True)
    if not isinstance(barrier, bool):
        raise ValueError(f"config['barrier_on_initializing'] must be bool, got {barrier!r}")
    audit_log_file = config.get("audit_log_file")
    if audit_log_file is not None:
        if not isinstance(audit_log_file, str) or not audit_log_file:
            raise ValueError(f"config['audit_log_file'] must be a file path, got {audit_log_file!r}")
        try:
            with open(audit_log_file, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise ValueError(f"config['audit_log_file']: cannot append to {audit_log_file!r}: {exc}") from exc
    comm = parse_comm(config.get("cross_silo_comm"))
    outbound_only = frozenset(p for p, e in extra.items() if e["outbound_only"])
    _check_outbound_only(party, outbound_only, addrs, comm)
    if isinstance(comm.compression, Mapping):
        # Every party runs the same script: a party finds its own name there too, and ignores it.
        _reject_unknown("cross_silo_comm['compression']", comm.compression, list(addrs))
    job = DEFAULT_JOB_NAME if job_name is None else job_name
    if not isinstance(job, str) or not _JOB_RE.match(job):
        raise ValueError(f"invalid job_name {job!r}: use up to 128 letters, digits, '.', '_' or '-'")
    return FedConfig(
        party=party,
        addresses=addrs,
        listen_address=listen.get(party, addrs[party]),
        job_name=job,
        comm=comm,
        tls=read_tls(tls_config, addrs),
        barrier_on_initializing=barrier,
        audit_log_file=audit_log_file,
        types=types,
        logging_level=logging_level,
        outbound_only=outbound_only,
        proxy=extra.get(party, {}).get("proxy"),
    )
