"""The receiver's admission checks without a socket: each refusal's status, its public text (fed's
own words, nothing the peer sent) and its detail (the peer's fields, truncated and escaped), and the
exact bytes a push is charged for."""

from __future__ import annotations

from pathlib import Path

import pytest
from cert_kit import issue

from fed._config import build_config
from fed._security.certs import make_certs
from fed._security.identity import peer_names
from fed._serialization import codec
from fed._transport import admission, wire
from fed._transport.admission import SLOT_COST, Refused
from fed._transport.link import Refusal

ADDRS = {"alice": "127.0.0.1:1", "bob": "127.0.0.1:2", "carol": "127.0.0.1:3"}
LONG = "x\n" * 1000  # a field with a newline in it, far past any limit


def config(**kw):
    return build_config(party="bob", addresses=ADDRS, job_name="job", **kw)


PLAIN = config(config={"cross_silo_comm": {"messages_max_size_in_bytes": 4096}})


def header(**kw) -> wire.Header:
    fields = dict(job="job", src="alice", dst="bob", object_id="o1", fingerprint="f1", codec=codec.NAME,
                  segments=(100,))
    fields.update(kw)
    return wire.Header(**fields)


def refusal(call) -> Refused:
    with pytest.raises(Refused) as info:
        call()
    error = info.value
    assert "\n" not in str(error) and len(str(error)) < 400
    return error


def test_a_message_from_a_peer_of_this_job_is_admitted():
    assert admission.check_source(PLAIN, "job", "alice", frozenset()) == "alice"
    assert admission.check_source(PLAIN, "job", "carol", frozenset()) == "carol"


def test_another_job_is_not_found_and_its_name_is_clipped_in_the_detail():
    error = refusal(lambda: admission.check_source(PLAIN, LONG, "alice", frozenset()))

    assert (error.kind, error.public) == (Refusal.UNKNOWN_JOB, "unknown job")
    assert error.detail == "job " + "x\\x0a" * 65 + "...(2000 chars)"  # 130 chars of it, escaped


@pytest.mark.parametrize("src, shown", [
    ("bob", "bob"), ("dave", "dave"), ("", ""), (None, "<NoneType>"), (5, "<int>"), (["alice"], "<list>"),
    ("d" * 131, "d" * 130 + "...(131 chars)"), (LONG, "x\\x0a" * 65 + "...(2000 chars)"),
], ids=["itself", "stranger", "empty", "none", "int", "list", "long", "long_with_newlines"])
def test_a_source_that_is_no_peer_is_denied(src, shown):
    error = refusal(lambda: admission.check_source(PLAIN, "job", src, frozenset()))

    assert (error.kind, error.public) == (Refusal.NOT_PERMITTED, "unknown source party")
    assert error.detail == f"src {shown}"  # at most 130 chars of it, escaped


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    root = tmp_path_factory.mktemp("admission")
    make_certs(["alice", "bob", "carol"], root / "ca")
    many = issue(root / "ca", "many", root / "out", dns=[f"p{i}" for i in range(9)])
    return config(tls_config={"ca_cert": str(root / "ca" / "ca.crt"), "cert": str(root / "ca" / "bob.crt"),
                              "key": str(root / "ca" / "bob.key")}), root, many


def auth(cert_path) -> frozenset[str]:
    """The names the link reads from a client's certificate (as gRPC hands it over)."""
    return peer_names({"x509_pem_cert": [Path(cert_path).read_bytes()]})


def test_with_tls_the_certificate_must_name_the_claimed_source(tls):
    cfg, root, many = tls
    assert admission.check_source(cfg, "job", "alice", auth(root / "ca" / "alice.crt")) == "alice"

    error = refusal(lambda: admission.check_source(cfg, "job", "alice", auth(root / "ca" / "carol.crt")))
    assert error.kind == Refusal.NOT_PERMITTED
    assert error.public == "the client certificate does not name the claimed source party 'alice'"
    assert error.detail == "it names carol, localhost"  # fed certs adds localhost to each


def test_with_tls_a_call_without_a_certificate_names_no_party(tls):
    cfg, _, _ = tls

    error = refusal(lambda: admission.check_source(cfg, "job", "alice", frozenset()))

    assert error.detail == "it names no party"


def test_with_tls_a_certificate_of_many_names_is_listed_by_its_first_five(tls):
    cfg, _, many = tls

    error = refusal(lambda: admission.check_source(cfg, "job", "alice", auth(many["cert"])))

    assert error.detail == "it names p0, p1, p2, p3, p4"


def test_a_header_for_another_party_is_invalid_and_clipped():
    error = refusal(lambda: admission.check_header(PLAIN, header(dst=LONG), frozenset()))

    assert (error.kind, error.public) == (Refusal.MALFORMED, "push addressed to another party")
    assert error.detail == "dst " + "x\\x0a" * 65 + "...(2000 chars)"
    assert refusal(lambda: admission.check_header(PLAIN, header(dst="alice"), frozenset())).public == \
        "push addressed to another party"


def test_a_header_checks_its_job_and_source_too():
    none = frozenset()
    assert refusal(lambda: admission.check_header(PLAIN, header(job="other"), none)).public == "unknown job"
    assert refusal(lambda: admission.check_header(PLAIN, header(src="bob"), none)).public == "unknown source party"


def test_a_value_of_exactly_the_size_limit_is_admitted_and_one_byte_more_is_not():
    admission.check_header(PLAIN, header(segments=(4096,)), frozenset())

    error = refusal(lambda: admission.check_header(PLAIN, header(segments=(4097,)), frozenset()))

    assert error.kind == Refusal.TOO_LARGE
    assert error.public == "value of 4097 bytes exceeds this party's messages_max_size_in_bytes=4096"
    assert error.detail is None and not error.no_room


def test_the_size_limit_counts_every_segment_with_its_alignment():
    one_too_many = (64, 64, 4096 - 2 * 64 + 1)
    assert header(segments=one_too_many).total_size == 4097

    assert refusal(lambda: admission.check_header(PLAIN, header(segments=one_too_many), frozenset())).kind == \
        Refusal.TOO_LARGE


def test_a_push_is_charged_its_payload_what_decoding_may_grow_its_header_and_a_slot():
    h = header(segments=(1000, 64), copied=(1,))

    assert admission.holding_cost(h, 333) == h.total_size + codec.holding_bound([1000, 64], (1,)) + 333 + SLOT_COST
    # records may grow 160 times in decoding, each segment holds 256 more, copied segments count twice
    assert codec.holding_bound([1000, 64], (1,)) == 160 * 1000 + 256 * 2 + 2 * 64
    assert codec.holding_bound([1000, 64, 10], (1, 2)) == 160 * 1000 + 256 * 3 + 2 * (64 + 10)
    assert codec.holding_bound([1000, 64], (0, 2, 5)) == 160 * 1000 + 256 * 2  # only data segments are copied
    assert codec.holding_bound([]) == 0
    errors = header(codec="error", segments=(1000,))
    assert admission.holding_cost(errors, 10) == errors.total_size + 10 + SLOT_COST


def test_a_logged_header_shows_at_most_80_chars_of_its_id_and_200_of_its_fingerprint():
    shown = admission.describe(header(object_id="i" * 500, fingerprint="f\n" * 500))

    assert shown == "i" * 80 + "...(500 chars) (" + "f\\x0a" * 100 + "...(1000 chars))"


def test_a_refusal_shows_its_detail_only_in_this_partys_text():
    error = Refused(Refusal.MALFORMED, "public", "detail")

    assert (str(error), error.public) == ("public (detail)", "public")
    assert str(Refused(Refusal.MALFORMED, "public")) == "public"
