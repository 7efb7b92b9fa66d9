"""Which party a TLS peer is: the names its certificate carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def peer_names(auth_context: Mapping[str, Sequence[bytes]]) -> set[str]:
    """Party names a peer's certificate claims: its SAN DNS names, else its common name."""
    sans = {v.decode(errors="replace") for v in auth_context.get("x509_subject_alternative_name", ())}
    if sans:
        return sans
    return {v.decode(errors="replace") for v in auth_context.get("x509_common_name", ())}


def peer_is(auth_context: Mapping[str, Sequence[bytes]], party: str) -> bool:
    """True when the peer's certificate names ``party``."""
    return party in peer_names(auth_context)
