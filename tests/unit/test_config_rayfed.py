"""RayFed 0.2's config keys and arguments: accepted with their meaning, or refused saying what to do."""

from __future__ import annotations

import pytest

import fed
from fed._config import parse_comm
from fed._config_grpc import DEFAULT_RETRY, RetryPolicy, applied_options
from fed._transport import grpc_link


def test_grpc_retry_policy_as_rayfed_documents_it():
    comm = parse_comm({"grpc_retry_policy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
                                             "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}})

    assert comm.grpc_retry_policy == RetryPolicy(4, 0.1, 1.0, 2.0, frozenset({"UNAVAILABLE"}))
    assert parse_comm({}).grpc_retry_policy == DEFAULT_RETRY  # retry until timeout_in_ms without progress
    assert parse_comm({"grpc_retry_policy": {"initialBackoff": 0.5}}).grpc_retry_policy.initial_backoff_s == 0.5


@pytest.mark.parametrize("policy, message", [
    ({"maxAttempt": 3}, "did you mean 'maxAttempts'"),
    ({"maxAttempts": 0}, "maxAttempts'] must be an int >= 1"),
    ({"initialBackoff": "1m"}, "must be a duration such as '0.5s'"),
    ({"initialBackoff": "2s", "maxBackoff": "1s"}, "maxBackoff must be at least initialBackoff"),
    ({"backoffMultiplier": -1}, "backoffMultiplier'] must be a number > 0"),
    ({"retryableStatusCodes": ["UNAVAILABLE", "SOMETIMES"]}, "'SOMETIMES' is not a gRPC status code name"),
    ({"retryableStatusCodes": ["PERMISSION_DENIED"]}, "fed never retries PERMISSION_DENIED"),
    ({"retryableStatusCodes": []}, "must be a list of status names"),
])
def test_a_malformed_retry_policy_is_a_value_error_that_names_it(policy, message):
    with pytest.raises(ValueError, match=message):
        parse_comm({"grpc_retry_policy": policy})


def test_grpc_channel_options_reach_channels_and_server_except_those_fed_sets_itself():
    comm = parse_comm({"grpc_channel_options": [("grpc.primary_user_agent", "x/1"), ["grpc.enable_retries", 0],
                                                ("grpc.max_receive_message_length", 1 << 30)]})

    kept, owned = applied_options(comm.grpc_channel_options)
    assert kept == [("grpc.primary_user_agent", "x/1"), ("grpc.enable_retries", 0)]
    assert owned == ["grpc.max_receive_message_length"]
    server = dict(grpc_link.server_options(4 << 20, 1 << 20, 32 << 20, comm.grpc_channel_options))
    assert server["grpc.primary_user_agent"] == "x/1"
    assert server["grpc.max_receive_message_length"] < 1 << 30  # fed's bound on what a peer sends holds


@pytest.mark.parametrize("options, message", [
    ([("grpc.x", 1, 2)], "each option is a \\(name, value\\) pair"),
    ([("max_send_message_length", 1)], "is not a gRPC channel argument name"),
    ([("grpc.enable_retries", True)], "must be an int or a str"),
    ([("grpc.enable_retries", 1.5)], "must be an int or a str"),
])
def test_malformed_channel_options_are_value_errors(options, message):
    with pytest.raises(ValueError, match=message):
        parse_comm({"grpc_channel_options": options})


def test_the_other_rayfed_keys_are_accepted_or_refused_saying_what_to_do():
    comm = parse_comm({"proxy_max_restarts": 3, "continue_waiting_for_data_sending_on_error": True})

    assert comm.proxy_max_restarts == 3 and comm.continue_waiting_for_data_sending_on_error
    assert parse_comm({"proxy_max_restarts": -1}).proxy_max_restarts == -1
    with pytest.raises(ValueError, match="proxy_max_restarts'\\] must be -1"):
        parse_comm({"proxy_max_restarts": -2})
    with pytest.raises(ValueError, match="continue_waiting_for_data_sending_on_error'\\] must be bool"):
        parse_comm({"continue_waiting_for_data_sending_on_error": "yes"})


@pytest.mark.parametrize("argument, words", [
    ("sender_proxy_cls", "takes a subclass of fed.proxy.base_proxy.SenderProxy"),
    ("receiver_proxy_cls", "needs sender_proxy_cls too"),
    ("receiver_sender_proxy_cls", "takes a subclass of fed.proxy.base_proxy.SenderReceiverProxy"),
])
def test_proxy_classes_that_do_not_fit_fail_fed_init_at_once_before_ray_starts(argument, words):
    kwargs = {argument: object}
    if argument == "sender_proxy_cls":
        from fed.proxy.base_proxy import ReceiverProxy

        kwargs["receiver_proxy_cls"] = ReceiverProxy
    with pytest.raises(ValueError, match=words):
        fed.init(address="local", cluster={"alice": {"address": "127.0.0.1:1"}}, party="alice", **kwargs)
    import ray

    assert not ray.is_initialized()


def test_shutdown_takes_true_false_or_none():
    with pytest.raises(TypeError, match="takes True, False or None"):
        fed.shutdown(on_error="yes")
    fed.shutdown(on_error=True)  # nothing initialised: nothing to do


def test_exceptions_and_config_modules_are_rayfeds_names():
    import fed.exceptions

    assert fed.exceptions.FedRemoteError is fed.FedRemoteError
    assert {"FedError", "FedSendError", "FedPeerLostError", "FedDivergenceError"} <= set(fed.exceptions.__all__)
    with pytest.raises(ValueError, match="no job named 'nope' was initialised"):
        fed.config.get_job_config("nope")


def test_party_cert_names_name_known_parties_with_dns_names(tmp_path):
    from fed._config import build_config
    from fed._security.certs import make_certs

    make_certs(["server"], tmp_path)
    tls = {"ca_cert": str(tmp_path / "ca.crt"), "cert": str(tmp_path / "server.crt"),
           "key": str(tmp_path / "server.key")}
    addrs = {"alice": "127.0.0.1:1", "bob": "127.0.0.1:2"}

    cfg = build_config(party="alice", addresses=addrs, tls_config={**tls, "party_cert_names": {"bob": "server"}})
    assert (cfg.tls.name_of("bob"), cfg.tls.name_of("alice")) == ("server", "alice")
    with pytest.raises(ValueError, match="did you mean 'bob' for 'bobb'"):
        build_config(party="alice", addresses=addrs, tls_config={**tls, "party_cert_names": {"bobb": "server"}})
    with pytest.raises(ValueError, match="must be a DNS name"):
        build_config(party="alice", addresses=addrs, tls_config={**tls, "party_cert_names": {"bob": "a b"}})
