"""Party names in certificates, read by fed exactly; a receiver's proof of who it is, checked by senders."""

from __future__ import annotations

from pathlib import Path

import pytest
from cert_kit import issue

from fed._security.certs import make_certs
from fed._security.identity import names_in
from fed._security.server_proof import Checker, ProofError, Prover


@pytest.fixture
def ca(tmp_path) -> Path:
    make_certs(["alice", "bob", "carol"], tmp_path / "ca")
    return tmp_path / "ca"


def pem(config) -> bytes:
    return Path(config["cert"]).read_bytes()


@pytest.mark.parametrize("kwargs, names", [
    ({"dns": ["bob"]}, {"bob"}),
    ({"dns": ["BOB"]}, {"BOB"}),                    # no case folding: BOB is not bob
    ({"dns": ["*.example.org"]}, {"*.example.org"}),  # a wildcard is only a name starting with *
    ({"emails": ["bob"], "uris": ["bob"], "ips": ["127.0.0.1"]}, set()),  # other SAN types name nobody
    ({"dns": [], "emails": ["bob@x"]}, set()),      # a SAN extension without DNS names: not the CN either
    ({"san": False}, {"bob"}),                      # no SAN extension at all: the common name
])
def test_a_certificate_names_the_parties_of_its_dns_sans_exactly(ca, tmp_path, kwargs, names):
    config = issue(ca, "bob", tmp_path / "out", **kwargs)

    assert names_in(pem(config)) == names


def test_an_unparsable_certificate_names_nobody():
    assert names_in(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n") == frozenset()


def proof(config, job="j", party="bob", clients=frozenset({"alice"})):
    prover = Prover(Path(config["cert"]).read_bytes(), Path(config["key"]).read_bytes(), job, party)
    return prover.metadata(frozenset(clients))


def checker(ca, job="j", party="alice"):
    return Checker((ca / "ca.crt").read_bytes(), job, party)


@pytest.mark.parametrize("rsa_key", [False, True])
def test_a_receiver_proves_its_party_to_a_sender(ca, tmp_path, rsa_key):
    config = issue(ca, "bob", tmp_path / "out", dns=["bob"], rsa_key=rsa_key)

    checker(ca).check("bob", proof(config))  # no error
    checker(ca).check("bob", proof(config, clients={"alice", "localhost"}))


@pytest.mark.parametrize("name, dns, dst, match", [
    ("BOB", ["BOB"], "bob", "names BOB, not 'bob'"),
    ("wild", ["*.example.org"], "bob.example.org", r"names \*.example.org, not 'bob.example.org'"),
    ("carol", ["carol", "localhost"], "bob", "names carol, localhost, not 'bob'"),
])
def test_a_server_whose_certificate_does_not_name_the_party_exactly_is_refused(ca, tmp_path, name, dns, dst, match):
    config = issue(ca, name, tmp_path / "out", dns=dns)

    with pytest.raises(ProofError, match=match):
        checker(ca).check(dst, proof(config, party=dst))


def test_a_proof_made_for_another_client_or_job_or_by_another_ca_is_refused(ca, tmp_path):
    bob = issue(ca, "bob", tmp_path / "out", dns=["bob"])
    with pytest.raises(ProofError, match="to another client"):  # relayed: bob proved himself to carol
        checker(ca).check("bob", proof(bob, clients={"carol"}))
    with pytest.raises(ProofError, match="did not sign"):  # signed for another job
        Checker((ca / "ca.crt").read_bytes(), "other-job", "alice").check("bob", proof(bob))
    other = tmp_path / "other"
    make_certs(["bob"], other)
    with pytest.raises(ProofError, match="not issued by this party's CA"):
        checker(ca).check("bob", proof({"cert": str(other / "bob.crt"), "key": str(other / "bob.key")}))


@pytest.mark.parametrize("metadata, match", [
    ((), "sent no proof"),
    ((("fed-proof-bin", b"\x93\x90\x90\xc4\x00"),), "malformed"),
    ((("fed-proof-bin", b"garbage"),), "malformed"),
    ((("fed-proof-bin", b"\xc4" + b"x" * 40_000),), "too large"),
])
def test_a_missing_or_malformed_proof_is_refused(ca, metadata, match):
    with pytest.raises(ProofError, match=match):
        checker(ca).check("bob", metadata)


def test_a_signature_over_other_words_is_refused(ca, tmp_path):
    bob = issue(ca, "bob", tmp_path / "out", dns=["bob"])
    mallory = issue(ca, "mallory", tmp_path / "out", dns=["mallory"])
    import msgpack
    chain, clients, _ = msgpack.unpackb(proof(bob)[0][1])
    _, _, signature = msgpack.unpackb(proof(mallory, party="bob")[0][1])  # mallory's key signing "I am bob"

    with pytest.raises(ProofError, match="did not sign"):
        checker(ca).check("bob", (("fed-proof-bin", msgpack.packb([chain, clients, signature])),))
