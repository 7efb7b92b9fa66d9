"""Tests for `fed._security.certs`: CA, party certificates, a real mTLS call."""

from __future__ import annotations

import ipaddress
import stat
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fed._security.certs import make_certs

PARTIES = ["alice", "bob", "carol"]


def _load(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def _common_name(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_make_certs_returns_a_tls_config_per_party(tmp_path: Path) -> None:
    out = tmp_path / "new" / "certs"

    configs = make_certs(PARTIES, out)

    assert list(configs) == PARTIES
    for party, config in configs.items():
        assert config == {
            "ca_cert": str(out / "ca.crt"),
            "cert": str(out / f"{party}.crt"),
            "key": str(out / f"{party}.key"),
        }
        assert all(Path(path).is_file() for path in config.values())
    assert (out / "ca.key").is_file()


def test_party_certificates_name_the_party_and_are_signed_by_the_ca(
    tmp_path: Path,
) -> None:
    configs = make_certs(PARTIES, tmp_path, days=2)

    ca = _load(configs["alice"]["ca_cert"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    for party, config in configs.items():
        cert = _load(config["cert"])
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert _common_name(cert) == party
        assert san.get_values_for_type(x509.DNSName) == [party, "localhost"]
        assert san.get_values_for_type(x509.IPAddress) == [
            ipaddress.ip_address("127.0.0.1")
        ]
        assert set(usage) == {
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        }
        assert constraints.value.ca is False
        cert.verify_directly_issued_by(ca)  # raises if the signature is wrong
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert 2 <= lifetime.days <= 3


def test_private_keys_are_readable_only_by_the_owner(tmp_path: Path) -> None:
    configs = make_certs(["alice"], tmp_path)

    modes = [
        stat.S_IMODE(Path(path).stat().st_mode)
        for path in (configs["alice"]["key"], tmp_path / "ca.key")
    ]

    assert modes == [0o600, 0o600]


@pytest.mark.parametrize(
    ("parties", "message"),
    [
        ([], "at least one"),
        (["alice", "bob", "alice"], "'alice'"),
        (["alice", ""], "''"),
        (["alice", "b/ob"], "'b/ob'"),
        (["al ice"], "'al ice'"),
    ],
)
def test_bad_party_names_are_rejected(
    tmp_path: Path, parties: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_certs(parties, tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_days_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="days"):
        make_certs(["alice"], tmp_path, days=0)


def test_certificates_work_for_a_mutual_tls_grpc_call(tmp_path: Path) -> None:
    configs = make_certs(["alice", "bob"], tmp_path)
    alice, bob = (
        {name: Path(path).read_bytes() for name, path in configs[party].items()}
        for party in ("alice", "bob")
    )
    peers: list[dict[str, list[bytes]]] = []

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        peers.append(context.auth_context())
        return request

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            )
        ]
    )
    server_credentials = grpc.ssl_server_credentials(
        [(bob["key"], bob["cert"])],
        root_certificates=bob["ca_cert"],
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", server_credentials)
    server.start()
    try:
        client_credentials = grpc.ssl_channel_credentials(
            alice["ca_cert"], alice["key"], alice["cert"]
        )
        options = [
            ("grpc.ssl_target_name_override", "bob"),
            ("grpc.enable_http_proxy", 0),
        ]
        with grpc.secure_channel(
            f"127.0.0.1:{port}", client_credentials, options
        ) as channel:
            reply = channel.unary_unary("/test.Echo/Echo")(b"ping", timeout=10)
    finally:
        server.stop(grace=None)

    assert reply == b"ping"
    [auth] = peers
    assert auth["x509_common_name"] == [b"alice"]
    assert b"alice" in auth["x509_subject_alternative_name"]
