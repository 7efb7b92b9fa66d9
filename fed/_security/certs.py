"""Create a throwaway CA and one mutual-TLS certificate per party."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_PARTY_NAME = re.compile(r"[A-Za-z0-9._-]+")
_CA_NAME = "fed test CA"


def make_certs(
    parties: list[str], out_dir: str | os.PathLike, days: int = 365
) -> dict[str, dict[str, str]]:
    """Write `ca.crt`, `ca.key` and `{party}.crt` / `{party}.key` for each party.

    Each party certificate has CN=party and SANs DNS:party, DNS:localhost and
    IP:127.0.0.1, and is valid for both TLS server and client authentication.
    Returns, per party, the `tls_config` that party should use.

    >>> make_certs(["alice", "bob"], "certs")["alice"]  # doctest: +SKIP
    {'ca_cert': 'certs/ca.crt', 'cert': 'certs/alice.crt', 'key': 'certs/alice.key'}
    """
    _validate(parties, days)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key, days)
    ca_cert_path = out / "ca.crt"
    _write_cert(ca_cert_path, ca_cert)
    _write_key(out / "ca.key", ca_key)

    configs: dict[str, dict[str, str]] = {}
    for party in parties:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _party_certificate(party, key, ca_cert, ca_key, days)
        cert_path, key_path = out / f"{party}.crt", out / f"{party}.key"
        _write_cert(cert_path, cert)
        _write_key(key_path, key)
        configs[party] = {
            "ca_cert": str(ca_cert_path),
            "cert": str(cert_path),
            "key": str(key_path),
        }
    return configs


def _validate(parties: list[str], days: int) -> None:
    if isinstance(parties, str):
        raise ValueError(f"parties must be a list of names, not the string {parties!r}")
    if not parties:
        raise ValueError("parties must name at least one party")
    seen: set[str] = set()
    for party in parties:
        if not isinstance(party, str) or not _PARTY_NAME.fullmatch(party):
            raise ValueError(
                f"invalid party name {party!r}: use letters, digits, '.', '_' or '-'"
            )
        if party in seen:
            raise ValueError(f"duplicate party name {party!r}")
        seen.add(party)
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be an integer >= 1, got {days!r}")


def _builder(
    subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey, days: int) -> x509.Certificate:
    public_key = key.public_key()
    return (
        _builder(_CA_NAME, _CA_NAME, public_key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _party_certificate(
    party: str,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    days: int,
) -> x509.Certificate:
    san = x509.SubjectAlternativeName(
        [
            x509.DNSName(party),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
    )
    usage = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    return (
        _builder(party, _CA_NAME, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(usage, critical=False)
        .add_extension(san, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to an existing file
