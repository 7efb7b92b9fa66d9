"""Certificates with chosen names, issued by a CA that ``fed certs`` made (for identity tests)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def issue(ca_dir: Path, name: str, out: Path, *, dns=(), emails=(), uris=(), ips=(), san=True,
          rsa_key=False, days=1) -> dict[str, str]:
    """A key and certificate (CN ``name``) issued by ``ca_dir``'s CA; the tls_config that uses them."""
    ca = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                              critical=False))
    if san:
        names = ([x509.DNSName(d) for d in dns] + [x509.RFC822Name(e) for e in emails]
                 + [x509.UniformResourceIdentifier(u) for u in uris]
                 + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    out.mkdir(parents=True, exist_ok=True)
    stem = out / name.replace("*", "star").replace("@", "_at_").replace(":", "_")
    cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return {"ca_cert": str(ca_dir / "ca.crt"), "cert": str(cert_path), "key": str(key_path)}
