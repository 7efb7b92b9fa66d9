"""A receiver proves to each sender which party it is, because gRPC's own check of the server is loose.

gRPC's Python client checks the server's certificate chain against the CA, but matches the
expected name the way browsers do (case-insensitively, and ``*.example.org`` matches
``bob.example.org``), and it does not show the certificate to the application. So fed adds its
own proof. At the start of every call the receiver sends, as initial metadata, its certificate
chain, the parties the client's certificate names, and a signature made with its TLS key over
``(job, its party, those client parties)``. The sender checks that the chain leads to its CA, that the leaf names the
destination party exactly (``identity.cert_names``), and the signature, before it sends any
part of a value. A server that does not hold the destination's key cannot make the proof, and
one that relays the call to the real party (as itself) gets a statement naming itself, not the
sender. The proof depends only on the parties and job, so each side computes it once.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable

import msgpack
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from fed._security.identity import cert_names

METADATA_KEY = "fed-proof-bin"
_CONTEXT = "fed-server-proof/1"
_MAX_PROOF = 32 * 1024
_MAX_CHAIN = 8


class ProofError(Exception):
    """The server did not prove it is the party the sender meant (the message says why)."""


def _statement(job: str, server: str, clients: Iterable[str]) -> bytes:
    return msgpack.packb([_CONTEXT, job, server, sorted(clients)])


def _sign(key: object, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return key.sign(data)
    raise ValueError(f"tls_config['key'] is a {type(key).__name__}: fed signs with EC, RSA or Ed25519/Ed448 keys")


def _verify(key: object, signature: bytes, data: bytes) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        key.verify(signature, data)
    else:
        raise InvalidSignature


class Prover:
    """The receiver's side: its chain and key, and one proof per set of client names."""

    def __init__(self, cert_pem: bytes, key_pem: bytes, job: str, party: str) -> None:
        self._chain = [c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(cert_pem)]
        self._key = serialization.load_pem_private_key(key_pem, password=None)
        self._job, self._party = job, party
        _sign(self._key, b"check")  # an unusable key fails fed.init, not the first call

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one Prover per receiver, few client identities
    def metadata(self, clients: frozenset[str]) -> tuple[tuple[str, bytes], ...]:
        """The initial metadata that proves this party to a client whose certificate names ``clients``."""
        signature = _sign(self._key, _statement(self._job, self._party, clients))
        return ((METADATA_KEY, msgpack.packb([self._chain, sorted(clients), signature])),)


class Checker:
    """The sender's side: checks a server's proof against the CA, once per distinct proof."""

    def __init__(self, ca_pem: bytes, job: str, party: str,
                 name_of: Callable[[str], str] = lambda party: party) -> None:
        self._cas = x509.load_pem_x509_certificates(ca_pem)
        self._job, self._party = job, party
        self._name_of = name_of  # party -> the name its certificate carries (tls_config['party_cert_names'])
        self._good: dict[tuple[str, bytes], float] = {}  # (party, proof) -> when the leaf expires

    def check(self, dst: str, metadata: Iterable[tuple[str, object]] | None) -> None:
        """``ProofError`` unless ``metadata`` proves the server is ``dst`` to this party."""
        proof = next((v for k, v in (metadata or ()) if k == METADATA_KEY), None)
        if not isinstance(proof, bytes):
            raise ProofError("the server sent no proof of identity (is it a fed receiver of this version?)")
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        expires = self._good.get((dst, proof))
        if expires is not None and now < expires:
            return
        leaf = self._verified(dst, proof)
        if len(self._good) > 256:
            self._good.clear()
        self._good[(dst, proof)] = leaf.not_valid_after_utc.timestamp()

    def _verified(self, dst: str, proof: bytes) -> x509.Certificate:
        if len(proof) > _MAX_PROOF:
            raise ProofError("the server's proof of identity is too large")
        try:
            ders, clients, signature = msgpack.unpackb(proof, max_bin_len=_MAX_PROOF, max_str_len=_MAX_PROOF,
                                                       max_array_len=64, max_map_len=0, max_ext_len=0)
            chain = [x509.load_der_x509_certificate(der) for der in ders[:_MAX_CHAIN]]
            if not chain or not isinstance(signature, bytes) or not all(isinstance(c, str) for c in clients):
                raise ValueError
        except (ValueError, TypeError, msgpack.UnpackException):
            raise ProofError("the server's proof of identity is malformed") from None
        leaf = chain[0]
        self._check_chain(chain)
        names = cert_names(leaf)
        if self._name_of(dst) not in names:
            shown = ", ".join(sorted(n[:64] for n in names)[:5]) or "no party"
            expected = repr(dst) if self._name_of(dst) == dst else f"{self._name_of(dst)!r} (party {dst!r})"
            raise ProofError(f"the server's certificate names {shown}, not {expected} (fed compares party names "
                             "exactly: no wildcards, no case folding)")
        if self._name_of(self._party) not in clients:
            raise ProofError(f"the server proved it is {dst!r} to another client, not to party {self._party!r}: it "
                             "may be relaying another party's answers")
        try:
            _verify(leaf.public_key(), signature, _statement(self._job, dst, clients))
        except (InvalidSignature, ValueError, TypeError):
            raise ProofError(f"the server sent a certificate naming {dst!r} but did not sign with its key") from None
        return leaf

    def _check_chain(self, chain: list[x509.Certificate]) -> None:
        """Each certificate is valid now and issued by the next; the last by one of the CA's."""
        now = datetime.datetime.now(datetime.timezone.utc)
        for i, cert in enumerate(chain):
            if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                raise ProofError("a certificate in the server's proof is expired or not yet valid")
            for issuer in [*self._cas, *chain[i + 1:i + 2]]:
                if issuer.subject != cert.issuer:
                    continue
                if issuer not in self._cas and not _is_ca(issuer):
                    continue
                try:
                    cert.verify_directly_issued_by(issuer)
                except (ValueError, TypeError, InvalidSignature):
                    continue
                if issuer in self._cas:
                    return
                break
            else:
                raise ProofError("the server's certificate is not issued by this party's CA (tls_config['ca_cert'])")
        raise ProofError("the server's certificate is not issued by this party's CA (tls_config['ca_cert'])")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False
