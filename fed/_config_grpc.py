"""RayFed 0.2's gRPC keys of ``config['cross_silo_comm']``: ``grpc_retry_policy`` and
``grpc_channel_options``, validated into what fed's sender and channels use."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fed._keys import reject_unknown

# gRPC's status codes by name (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
STATUS_CODES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
                "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")
# Codes no retry can help with, or that carry fed's own refusals (a retry would be refused again).
_NEVER_RETRIED = frozenset({"OK", "INVALID_ARGUMENT", "NOT_FOUND", "PERMISSION_DENIED", "UNAUTHENTICATED",
                            "UNIMPLEMENTED", "RESOURCE_EXHAUSTED", "ALREADY_EXISTS", "FAILED_PRECONDITION",
                            "OUT_OF_RANGE"})
_RETRY_KEYS = ("maxAttempts", "initialBackoff", "maxBackoff", "backoffMultiplier", "retryableStatusCodes")
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)s$")
# Channel options fed sets itself: message sizes follow its chunks and caps, metadata its identity
# proofs, streams and pings its receiver's bounds, HTTP/2 flow control its push window, and a port
# is never shared.
FED_OWNED_OPTIONS = frozenset({"grpc.max_send_message_length", "grpc.max_receive_message_length",
                               "grpc.max_metadata_size", "grpc.so_reuseport", "grpc.max_concurrent_streams",
                               "grpc.http2.max_ping_strikes", "grpc.ssl_target_name_override",
                               "grpc.http2.bdp_probe", "grpc.http2.lookahead_bytes"})


@dataclass(frozen=True)
class RetryPolicy:
    """How a push is retried after a transient failure: at most ``max_attempts`` tries in all (None:
    until ``timeout_in_ms`` passes without progress), the first wait ``initial_backoff_s``, each
    next one ``multiplier`` times longer up to ``max_backoff_s``, for the status codes ``retryable``."""

    max_attempts: int | None = None
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    retryable: frozenset[str] = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"})


DEFAULT_RETRY = RetryPolicy()


def parse_retry_policy(raw: Mapping[str, Any] | None) -> RetryPolicy:
    """``grpc_retry_policy`` as gRPC's service config spells it (``maxAttempts``, ``"0.1s"`` ...)."""
    if raw is None:
        return DEFAULT_RETRY
    reject_unknown("grpc_retry_policy", raw, _RETRY_KEYS)
    given: dict[str, Any] = {}
    if "maxAttempts" in raw:
        attempts = raw["maxAttempts"]
        if type(attempts) is not int or attempts < 1:
            raise ValueError(f"grpc_retry_policy['maxAttempts'] must be an int >= 1, got {attempts!r}")
        given["max_attempts"] = attempts
    for key, name in (("initialBackoff", "initial_backoff_s"), ("maxBackoff", "max_backoff_s")):
        if key in raw:
            given[name] = _seconds(raw[key], key)
    if "backoffMultiplier" in raw:
        multiplier = raw["backoffMultiplier"]
        if type(multiplier) not in (int, float) or not multiplier > 0:
            raise ValueError(f"grpc_retry_policy['backoffMultiplier'] must be a number > 0, got {multiplier!r}")
        given["multiplier"] = float(multiplier)
    if "retryableStatusCodes" in raw:
        given["retryable"] = _codes(raw["retryableStatusCodes"])
    policy = RetryPolicy(**given)
    if policy.max_backoff_s < policy.initial_backoff_s:
        raise ValueError("grpc_retry_policy: maxBackoff must be at least initialBackoff")
    return policy


def _seconds(value: Any, key: str) -> float:
    if type(value) in (int, float) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"grpc_retry_policy[{key!r}] must be a duration such as '0.5s', got {value!r}")
    return float(match.group(1))


def _codes(value: Any) -> frozenset[str]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"grpc_retry_policy['retryableStatusCodes'] must be a list of status names, got {value!r}")
    codes = set()
    for code in value:
        name = code.upper() if isinstance(code, str) else None
        if name not in STATUS_CODES:
            raise ValueError(f"grpc_retry_policy['retryableStatusCodes']: {code!r} is not a gRPC status code name "
                             f"(one of {', '.join(STATUS_CODES)})")
        if name in _NEVER_RETRIED:
            raise ValueError(f"grpc_retry_policy['retryableStatusCodes']: fed never retries {name}: it is a "
                             "refusal that the same push would get again")
        codes.add(name)
    return frozenset(codes)


def parse_channel_options(raw: Sequence[Any] | None) -> tuple[tuple[str, int | str], ...]:
    """``grpc_channel_options``: ``[(name, int or str), ...]`` with gRPC names (``grpc.*``)."""
    if raw is None:
        return ()
    options = []
    for option in raw:
        if not isinstance(option, (list, tuple)) or len(option) != 2:
            raise ValueError(f"grpc_channel_options: each option is a (name, value) pair, got {option!r}")
        name, value = option
        if not isinstance(name, str) or not re.fullmatch(r"grpc\.[a-z0-9_.]+", name):
            raise ValueError(f"grpc_channel_options: {name!r} is not a gRPC channel argument name ('grpc.…')")
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"grpc_channel_options[{name!r}] must be an int or a str, got {value!r}")
        options.append((name, value))
    return tuple(options)


def applied_options(options: Sequence[tuple[str, int | str]]) -> tuple[list[tuple[str, int | str]], list[str]]:
    """The user's channel options fed applies, and the names it leaves out (it sets them itself)."""
    kept = [(name, value) for name, value in options if name not in FED_OWNED_OPTIONS]
    return kept, sorted({name for name, _ in options if name in FED_OWNED_OPTIONS})
