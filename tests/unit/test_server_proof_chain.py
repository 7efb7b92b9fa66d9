"""A receiver's proof of identity, past the simple cases: chains through an intermediate CA, certificates
out of their validity, key types, sizes at their limit, and a proof checked before that has expired since."""

from __future__ import annotations

import datetime
import time

import msgpack
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519
from cryptography.x509.oid import NameOID

from fed._security.server_proof import METADATA_KEY, Checker, ProofError, Prover

NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(subject: str, key, issuer: str, issuer_key, *, ca: bool | None = None, dns=(), start=None, end=None):
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start or NOW - datetime.timedelta(minutes=5))
               .not_valid_after(end or NOW + datetime.timedelta(days=1)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def pem(*certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT = cert("root", ROOT_KEY, "root", ROOT_KEY, ca=True)


def check(chain_pem: bytes, leaf_key, dst="bob", cas=ROOT) -> None:
    proof = Prover(chain_pem, key_pem(leaf_key), "j", dst).metadata(frozenset({"alice"}))
    Checker(pem(cas), "j", "alice").check(dst, proof)


def test_a_chain_through_an_intermediate_ca_is_accepted():
    mid_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    mid = cert("mid", mid_key, "root", ROOT_KEY, ca=True)
    leaf = cert("bob", leaf_key, "mid", mid_key, dns=["bob"])

    check(pem(leaf, mid), leaf_key)


@pytest.mark.parametrize("ca", [False, None], ids=["not_a_ca", "no_basic_constraints"])
def test_an_intermediate_that_is_not_a_ca_cannot_issue(ca):
    mid_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    mid = cert("mid", mid_key, "root", ROOT_KEY, ca=ca)
    leaf = cert("bob", leaf_key, "mid", mid_key, dns=["bob"])

    with pytest.raises(ProofError, match="not issued by this party's CA"):
        check(pem(leaf, mid), leaf_key)


def test_a_chain_that_stops_short_of_the_ca_is_refused():
    mid_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    leaf = cert("bob", leaf_key, "mid", mid_key, dns=["bob"])

    with pytest.raises(ProofError, match="not issued by this party's CA"):
        check(pem(leaf), leaf_key)


def test_a_certificate_of_the_same_name_but_another_key_does_not_issue():
    fake_root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    fake_root = cert("root", fake_root_key, "root", fake_root_key, ca=True)
    leaf = cert("bob", leaf_key, "root", fake_root_key, dns=["bob"])

    with pytest.raises(ProofError, match="not issued by this party's CA"):
        check(pem(leaf, fake_root), leaf_key)


@pytest.mark.parametrize("start, end", [
    (NOW - datetime.timedelta(days=2), NOW - datetime.timedelta(days=1)),
    (NOW + datetime.timedelta(days=1), NOW + datetime.timedelta(days=2)),
], ids=["expired", "not_yet_valid"])
@pytest.mark.parametrize("which", ["leaf", "intermediate"])
def test_a_certificate_out_of_its_validity_is_refused(start, end, which):
    mid_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    window = {"start": start, "end": end}
    mid = cert("mid", mid_key, "root", ROOT_KEY, ca=True, **(window if which == "intermediate" else {}))
    leaf = cert("bob", leaf_key, "mid", mid_key, dns=["bob"], **(window if which == "leaf" else {}))

    with pytest.raises(ProofError, match="expired or not yet valid"):
        check(pem(leaf, mid), leaf_key)


def test_ed25519_keys_prove_too():
    leaf_key = ed25519.Ed25519PrivateKey.generate()
    leaf = cert("bob", leaf_key, "root", ROOT_KEY, dns=["bob"])

    check(pem(leaf), leaf_key)


def test_a_key_fed_cannot_sign_with_fails_when_the_receiver_starts():
    leaf_key = dsa.generate_private_key(2048)
    leaf = cert("bob", leaf_key, "root", ROOT_KEY, dns=["bob"])

    with pytest.raises(ValueError, match="fed signs with EC, RSA or Ed25519/Ed448 keys"):
        Prover(pem(leaf), key_pem(leaf_key), "j", "bob")


def test_a_proof_signed_by_a_key_of_another_type_is_refused():
    leaf_key, other = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    leaf = cert("bob", leaf_key, "root", ROOT_KEY, dns=["bob"])
    chain, clients, _ = msgpack.unpackb(Prover(pem(leaf), key_pem(leaf_key), "j", "bob").metadata(
        frozenset({"alice"}))[0][1])
    signed = Prover(pem(cert("x", other, "root", ROOT_KEY)), key_pem(other), "j", "bob").metadata(
        frozenset({"alice"}))
    signature = msgpack.unpackb(signed[0][1])[2]

    with pytest.raises(ProofError, match="did not sign"):
        Checker(pem(ROOT), "j", "alice").check("bob", ((METADATA_KEY, msgpack.packb([chain, clients, signature])),))


def test_a_proof_of_exactly_the_size_limit_is_read_and_one_byte_more_is_not():
    limit = 32 * 1024
    with pytest.raises(ProofError, match="malformed"):
        Checker(pem(ROOT), "j", "alice").check("bob", ((METADATA_KEY, b"\x00" * limit),))
    with pytest.raises(ProofError, match="too large"):
        Checker(pem(ROOT), "j", "alice").check("bob", ((METADATA_KEY, b"\x00" * (limit + 1)),))


@pytest.mark.parametrize("proof", [
    msgpack.packb([[], ["alice"], b"s"]),            # no certificate
    msgpack.packb([[b"not der"], ["alice"], b"s"]),
    msgpack.packb([[], ["alice"], "s"]),
    msgpack.packb([[b"x"], [1], b"s"]),
    msgpack.packb({"a": 1}),
    msgpack.packb([[b"x"], ["alice"]]),
], ids=["no_chain", "bad_der", "str_signature", "int_client", "map", "two_parts"])
def test_a_proof_of_the_wrong_shape_is_malformed(proof):
    with pytest.raises(ProofError, match="malformed"):
        Checker(pem(ROOT), "j", "alice").check("bob", ((METADATA_KEY, proof),))


def test_a_proof_that_was_good_is_checked_again_once_its_certificate_expires():
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    end = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=2)
    leaf = cert("bob", leaf_key, "root", ROOT_KEY, dns=["bob"], end=end)
    proof = Prover(pem(leaf), key_pem(leaf_key), "j", "bob").metadata(frozenset({"alice"}))
    checker = Checker(pem(ROOT), "j", "alice")
    checker.check("bob", proof)
    checker.check("bob", proof)  # remembered

    time.sleep(max(0.0, end.timestamp() - time.time()) + 1.1)

    with pytest.raises(ProofError, match="expired"):
        checker.check("bob", proof)


def test_a_remembered_proof_counts_only_for_the_party_it_proved():
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = cert("bob", leaf_key, "root", ROOT_KEY, dns=["bob"])
    proof = Prover(pem(leaf), key_pem(leaf_key), "j", "bob").metadata(frozenset({"alice"}))
    checker = Checker(pem(ROOT), "j", "alice")
    checker.check("bob", proof)

    with pytest.raises(ProofError, match="names bob, not 'carol'"):
        checker.check("carol", proof)


def test_many_names_are_shown_five_and_each_cut_to_64_chars():
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    names = [f"n{i}" + "x" * 100 for i in range(8)]
    leaf = cert("bob", leaf_key, "root", ROOT_KEY, dns=names)

    with pytest.raises(ProofError) as info:
        check(pem(leaf), leaf_key)

    shown = ", ".join(sorted(n[:64] for n in names)[:5])
    assert str(info.value).startswith(f"the server's certificate names {shown}, not 'bob'")
