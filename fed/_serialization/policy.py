"""What a receiving party accepts from its peers, beyond the data fed's codec always carries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fed._serialization.registry import NONE, Types
from fed._serialization.restricted import Allowed, compile_allowed


@dataclass(frozen=True)
class Policy:
    """``types`` registered at this party; ``allowed``: its ``serializing_allowed_list`` (objects of
    those classes cross as restricted pickles); ``unsafe``: ``allow_unsafe_deserialization``."""

    types: Types = NONE
    allowed: Allowed = field(default_factory=lambda: compile_allowed(None)[0])
    unsafe: bool = False


def make_policy(types: Types, listed: Mapping[str, Iterable[str]] | None, unsafe: bool) -> Policy:
    """The policy of a party from its registered types and config (the list is checked already)."""
    return Policy(types=types, allowed=compile_allowed(listed)[0], unsafe=unsafe)
