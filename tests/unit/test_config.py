"""fed.init's arguments: both forms normalise to one FedConfig; anything unknown is a ValueError."""

from __future__ import annotations

import pytest

from fed._config import CommConfig, build_config, parse_address, parse_comm

CLUSTER = {"alice": {"address": "127.0.0.1:11010"}, "bob": {"address": "127.0.0.1:11011"}}


def test_cluster_form_uses_address_as_listen_address_by_default():
    cfg = build_config(party="alice", cluster=CLUSTER)

    assert cfg.addresses == {"alice": "127.0.0.1:11010", "bob": "127.0.0.1:11011"}
    assert cfg.listen_address == "127.0.0.1:11010"
    assert cfg.peers == ["bob"]
    assert cfg.job_name == "default"
    assert cfg.barrier_on_initializing is True
    assert cfg.comm == CommConfig()


def test_cluster_form_accepts_listen_addr():
    cluster = {**CLUSTER, "alice": {"address": "10.0.0.1:11010", "listen_addr": "0.0.0.0:11010"}}

    cfg = build_config(party="alice", cluster=cluster)

    assert cfg.listen_address == "0.0.0.0:11010"
    assert cfg.addresses["alice"] == "10.0.0.1:11010"


def test_addresses_form_with_config_and_job():
    comm = {
        "timeout_in_ms": 1000, "messages_max_size_in_bytes": 1 << 20,
        "serializing_allowed_list": {"numpy": ["ndarray"]}, "exit_on_sending_failure": True,
        "expose_error_trace": True, "http_header": {"X-Token": "t"}, "max_concurrency": 10,
        "send_resource_label": {"gw": 1}, "recv_resource_label": {"gw": 1}, "use_global_proxy": False,
    }

    cfg = build_config(party="bob", addresses={"alice": "127.0.0.1:1", "bob": "127.0.0.1:2"},
                       config={"cross_silo_comm": comm, "barrier_on_initializing": False}, job_name="j-1")

    assert cfg.party == "bob" and cfg.job_name == "j-1"
    assert cfg.barrier_on_initializing is False
    assert cfg.comm.timeout_in_ms == 1000
    assert cfg.comm.serializing_allowed_list == {"numpy": ["ndarray"]}
    assert cfg.comm.http_header == {"X-Token": "t"}


@pytest.mark.parametrize("kwargs, words", [
    ({"config": {"cross_silo_comm": {"timeout_ms": 5}}}, "timeout_ms"),
    ({"config": {"barrier": True}}, "barrier"),
    ({"config": {"cross_silo_comm": {"timeout_in_ms": -1}}}, "timeout_in_ms"),
    ({"config": {"cross_silo_comm": {"timeout_in_ms": True}}}, "timeout_in_ms"),
    ({"config": {"cross_silo_comm": {"expose_error_trace": "yes"}}}, "expose_error_trace"),
    ({"job_name": "bad job"}, "job_name"),
])
def test_bad_config_is_a_value_error_naming_the_key(kwargs, words):
    with pytest.raises(ValueError, match=words):
        build_config(party="alice", cluster=CLUSTER, **kwargs)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:", "host:99999", ":80", "a b:1", "[::1:80", 11010])
def test_malformed_address_is_named(address):
    with pytest.raises(ValueError, match="address"):
        build_config(party="alice", cluster={**CLUSTER, "bob": {"address": address}})


def test_ipv6_and_hostnames_are_accepted():
    assert parse_address("[::1]:80", "x") == "[::1]:80"
    assert parse_address("bob.example.org:443", "x") == "bob.example.org:443"


def test_unknown_cluster_entry_key_and_unknown_party():
    with pytest.raises(ValueError, match="adress"):
        build_config(party="alice", cluster={**CLUSTER, "bob": {"address": "h:1", "adress": "h:2"}})
    with pytest.raises(ValueError, match="carol"):
        build_config(party="carol", cluster=CLUSTER)


def test_an_unknown_key_is_an_error_that_suggests_the_nearest_known_key():
    with pytest.raises(ValueError) as info:
        parse_comm({"timeout_ms": 1000})
    assert "unknown cross_silo_comm key(s) ['timeout_ms'] (did you mean 'timeout_in_ms' for 'timeout_ms'?)" \
        in str(info.value)
    with pytest.raises(ValueError, match=r"did you mean 'barrier_on_initializing' for 'barrier_on_init'\?"):
        build_config(party="alice", cluster=CLUSTER, config={"barrier_on_init": True})
    with pytest.raises(ValueError) as info:
        parse_comm({"zzz": 1, 7: 2})  # nothing near, and a key that is not even a str
    assert "did you mean" not in str(info.value) and "valid keys are" in str(info.value)


def test_exactly_one_form():
    with pytest.raises(ValueError, match="exactly one"):
        build_config(party="alice", cluster=CLUSTER, addresses={"alice": "h:1"})
    with pytest.raises(ValueError, match="exactly one"):
        build_config(party="alice")


def test_tls_config_is_read_and_checked(tmp_path):
    for name in ("ca", "cert", "key"):
        (tmp_path / name).write_bytes(name.encode())
    tls = {"ca_cert": tmp_path / "ca", "cert": tmp_path / "cert", "key": tmp_path / "key"}

    cfg = build_config(party="alice", cluster=CLUSTER, tls_config=tls)

    assert cfg.tls.ca_cert == b"ca" and cfg.tls.key == b"key"
    with pytest.raises(ValueError, match="missing"):
        build_config(party="alice", cluster=CLUSTER, tls_config={"ca_cert": tmp_path / "ca"})
    with pytest.raises(ValueError, match="cannot read"):
        build_config(party="alice", cluster=CLUSTER, tls_config={**tls, "key": tmp_path / "nope"})


def test_allowed_list_shape_is_checked():
    with pytest.raises(ValueError, match="serializing_allowed_list"):
        parse_comm({"serializing_allowed_list": {"numpy": "ndarray"}})
