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


def cert(subject: str, key, issuer: str, issuer_key, *, ca: bool | None = None, dns=(), emails=(), start=None,
         end=None):
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start or NOW - datetime.timedelta(minutes=5))
               .not_valid_after(end or NOW + datetime.timedelta(days=1)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if dns or emails:
        names = [x509.DNSName(d) for d in dns] + [x509.RFC822Name(e) for e in emails]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
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

    with pytest.raises(ValueError) as info:
        Prover(pem(leaf), key_pem(leaf_key), "j", "bob")
    assert str(info.value) == "tls_config['key'] is a DSAPrivateKey: fed signs with EC, RSA or Ed25519/Ed448 keys"


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


def test_a_chain_of_three_levels_is_accepted():
    top_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    top = cert("top", top_key, "root", ROOT_KEY, ca=True)
    mid = cert("mid", mid_key, "top", top_key, ca=True)
    leaf = cert("bob", leaf_key, "mid", mid_key, dns=["bob"])

    check(pem(leaf, mid, top), leaf_key)


NOT_ISSUED = "the server's certificate is not issued by this party's CA (tls_config['ca_cert'])"


def test_a_forged_leaf_followed_by_a_genuine_certificate_is_refused():
    # mallory holds a genuine certificate of the CA; she forges "bob" with her own key and puts her
    # genuine certificate after it, as if it were the issuer
    mallory_key, forged_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    genuine = cert("mallory", mallory_key, "root", ROOT_KEY, dns=["mallory"])
    forged = cert("bob", forged_key, "mallory", mallory_key, dns=["bob"])
    forged_elsewhere = cert("bob", forged_key, "somebody", mallory_key, dns=["bob"])
    forged_as_the_ca = cert("bob", forged_key, "root", mallory_key, dns=["bob"])  # the CA's name, not its key

    for leaf in (forged, forged_elsewhere, forged_as_the_ca):
        with pytest.raises(ProofError) as info:
            check(pem(leaf, genuine), forged_key)
        assert str(info.value) == NOT_ISSUED


def test_a_leaf_from_a_rogue_ca_cannot_borrow_a_genuine_certificate_further_down_the_chain():
    rogue_key, mallory_key, forged_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    rogue = cert("rogue", rogue_key, "rogue", rogue_key, ca=True)
    genuine = cert("mallory", mallory_key, "root", ROOT_KEY, dns=["mallory"])
    forged = cert("bob", forged_key, "rogue", rogue_key, dns=["bob"])

    for chain in ((forged, genuine, rogue), (forged, rogue, genuine), (forged, rogue)):
        with pytest.raises(ProofError) as info:
            check(pem(*chain), forged_key)
        assert str(info.value) == NOT_ISSUED


def _real_proof_parts():
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = cert("bob", leaf_key, "root", ROOT_KEY, dns=["bob"])
    return msgpack.unpackb(Prover(pem(leaf), key_pem(leaf_key), "j", "bob").metadata(frozenset({"alice"}))[0][1])


@pytest.mark.parametrize("change", ["str_signature", "int_client", "65_clients"])
def test_a_proof_with_a_real_chain_but_parts_of_the_wrong_shape_is_malformed(change):
    chain, clients, signature = _real_proof_parts()
    if change == "str_signature":
        signature = "s"
    elif change == "int_client":
        clients = [*clients, 5]
    else:
        clients = sorted([*clients, *(f"p{i}" for i in range(64))])
    proof = msgpack.packb([chain, clients, signature])

    with pytest.raises(ProofError) as info:
        Checker(pem(ROOT), "j", "alice").check("bob", ((METADATA_KEY, proof),))
    assert str(info.value) == "the server's proof of identity is malformed"


def test_each_refusal_of_a_proof_says_exactly_why():
    checker = Checker(pem(ROOT), "j", "alice")
    cases = [
        ((), "the server sent no proof of identity (is it a fed receiver of this version?)"),
        (((METADATA_KEY, b"\x00" * (32 * 1024 + 1)),), "the server's proof of identity is too large"),
        (((METADATA_KEY, b"\xc1"),), "the server's proof of identity is malformed"),
    ]
    for metadata, message in cases:
        with pytest.raises(ProofError) as info:
            checker.check("bob", metadata)
        assert str(info.value) == message

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    nameless = cert("bob", leaf_key, "root", ROOT_KEY, emails=["bob@example.org"])  # a SAN without DNS names
    with pytest.raises(ProofError) as info:
        check(pem(nameless), leaf_key)
    assert str(info.value) == ("the server's certificate names no party, not 'bob' (fed compares party names "
                               "exactly: no wildcards, no case folding)")

    bob = cert("bob", leaf_key, "root", ROOT_KEY, dns=["bob"])
    relayed = Prover(pem(bob), key_pem(leaf_key), "j", "bob").metadata(frozenset({"carol"}))
    with pytest.raises(ProofError) as info:
        checker.check("bob", relayed)
    assert str(info.value) == ("the server proved it is 'bob' to another client, not to party 'alice': it may be "
                               "relaying another party's answers")

    expired = cert("bob", leaf_key, "root", ROOT_KEY, dns=["bob"], start=NOW - datetime.timedelta(days=2),
                   end=NOW - datetime.timedelta(days=1))
    with pytest.raises(ProofError) as info:
        check(pem(expired), leaf_key)
    assert str(info.value) == "a certificate in the server's proof is expired or not yet valid"
