"""Which party a TLS peer is: read by fed from the peer's certificate, not by host-name matching.

A certificate names the parties in its DNS subject alternative names, compared exactly (no case
folding, and a wildcard is only a name that starts with ``*``); only a certificate with no SAN
extension at all is named by its common name. E-mail, URI and IP SANs never name a party.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID


@functools.lru_cache(maxsize=64)
def names_in(pem: bytes) -> frozenset[str]:
    """The party names a PEM certificate carries (empty if it does not parse)."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return frozenset()
    return cert_names(cert)


def cert_names(cert: x509.Certificate) -> frozenset[str]:
    """DNS SANs exactly as written; the common name only when there is no SAN extension."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset(a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
                         if isinstance(a.value, str))
    except ValueError:  # a malformed extension names nobody
        return frozenset()
    return frozenset(san.get_values_for_type(x509.DNSName))


def peer_names(auth_context: Mapping[str, Sequence[bytes]]) -> frozenset[str]:
    """Party names the TLS client of a call proved with its certificate (gRPC verified the chain)."""
    pems = auth_context.get("x509_pem_cert") or ()
    return names_in(bytes(pems[0])) if pems else frozenset()
