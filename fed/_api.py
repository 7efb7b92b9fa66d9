"""The public entry points: ``init``, ``get``, ``kill`` and ``shutdown``."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

import ray

from fed import _logs as logs
from fed import _plugins
from fed import config as job_config
from fed._config import FedConfig, build_config
from fed._config_grpc import applied_options
from fed._exceptions import FedError, FedRemoteError
from fed._runtime import context, excepthook, single
from fed._runtime.audit import AuditLog
from fed._runtime.objects import FedObject
from fed._runtime.remote import FedActorHandle
from fed._runtime.send_watch import unwrap
from fed._security.untrusted import clip
from fed._serialization import registry
from fed._serialization.restricted import compile_allowed
from fed._transport import party as transport

logger = logging.getLogger("fed")
_atexit_registered = False
_warned_no_tls = False
_last_audit: AuditLog | None = None


def init(
    address: str | None = None,
    cluster: Mapping[str, Any] | None = None,
    party: str | None = None,
    *,
    addresses: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    tls_config: Mapping[str, str] | None = None,
    job_name: str | None = None,
    logging_level: str | int = "info",
    sending_failure_handler: Callable[[BaseException], None] | None = None,
    single_controller: bool | None = None,
    sender_proxy_cls: Any = None,
    receiver_proxy_cls: Any = None,
    receiver_sender_proxy_cls: Any = None,
) -> None:
    """Join the federation as ``party``: start (or use) Ray, the receiver and the sender.

    Two forms are accepted::

        fed.init(address='local', cluster={'alice': {'address': '127.0.0.1:11010'},
                                           'bob': {'address': '127.0.0.1:11011'}}, party='alice')

        ray.init(address='local')
        fed.init(addresses={'alice': '127.0.0.1:11010', 'bob': '127.0.0.1:11011'}, party='alice',
                 config={'cross_silo_comm': {'timeout_in_ms': 120_000}}, job_name='job-1')

    With ``config={'barrier_on_initializing': True}`` (the default) it returns once every peer answers.
    ``sending_failure_handler(exc)`` is called when a push to a peer finally fails.

    ``single_controller=True`` (or the environment variable ``FED_SINGLE_CONTROLLER=1``, which
    ``fed run --single`` sets) plays every party in this process instead: the script runs once,
    and ``party`` only has to be one of the parties.

    RayFed 0.2's ``sender_proxy_cls`` with ``receiver_proxy_cls``, or ``receiver_sender_proxy_cls``,
    move fed's messages over the user's own link instead of fed's gRPC (``fed.proxy.base_proxy``).
    """
    proxies = _plugins.plugins(sender_proxy_cls, receiver_proxy_cls, receiver_sender_proxy_cls, tls_config,
                               (config or {}).get("cross_silo_comm"))
    if context.active() is not None:
        raise RuntimeError("fed is already initialised in this process; call fed.shutdown() first")
    level = logs.setup(logging_level)
    if sending_failure_handler is not None and not callable(sending_failure_handler):
        raise ValueError("sending_failure_handler must be a callable taking the exception")
    cfg = build_config(party=party, cluster=cluster, addresses=addresses, config=config,
                       tls_config=tls_config, job_name=job_name, types=registry.snapshot(), logging_level=level)
    if proxies is not None:
        if cfg.outbound_only:
            raise ValueError("an outbound_only party needs fed's own link: it cannot be combined with "
                             "sender_proxy_cls / receiver_proxy_cls")
        cfg = dataclasses.replace(cfg, link="proxy", plugins=proxies)
    _warn_ignored(cfg)
    job_config.remember(cfg.job_name, cfg.party, cfg.addresses, (config or {}).get("cross_silo_comm"), tls_config)
    registry.freeze(cfg.party)
    try:
        if single.wanted(single_controller, list(cfg.addresses)):
            runtime = _start_single(cfg, address)
        else:
            runtime = _start_multi(cfg, address, sending_failure_handler)
    except BaseException:
        registry.thaw()
        raise
    context.set_current(runtime)
    excepthook.install(runtime.record_failure)
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(shutdown)
        _atexit_registered = True


def _warn_ignored(cfg: FedConfig) -> None:
    """Say which ``serializing_allowed_list`` entries and ``grpc_channel_options`` have no effect, and why."""
    _, fed_owned = applied_options(cfg.comm.grpc_channel_options)
    if fed_owned:
        logger.warning("grpc_channel_options %s are not applied: fed sets them itself (values travel in chunks, "
                       "so no message length needs raising; messages_max_size_in_bytes limits a value's size)",
                       ", ".join(fed_owned))
    _, ignored = compile_allowed(cfg.comm.serializing_allowed_list)
    if ignored:
        logger.warning("serializing_allowed_list entries ignored: %s. Arrays, tensors and standard types "
                       "cross through fed's own codec; see README, 'Values from other parties'",
                       "; ".join(ignored))


def _let_fed_interrupt_main() -> None:
    """exit_on_sending_failure stops the program as Ctrl+C does (``_thread.interrupt_main``), which
    Python delivers only while SIGINT has its handler. A process started in the background of a
    shell (``cmd &``, nohup) starts with SIGINT ignored: then fed.init gives it Python's default
    handler back, and says so."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        logger.warning("exit_on_sending_failure is set and SIGINT was ignored in this process: fed restored "
                       "Python's Ctrl+C handler so that a failed push can stop the program")


def _start_multi(cfg: FedConfig, address: str | None,
                 on_failure: Callable[[BaseException], None] | None) -> context.Runtime:
    """This process is one party: start (or use) Ray, the receiver and the sender."""
    global _warned_no_tls
    if cfg.tls is None and len(cfg.addresses) > 1 and not _warned_no_tls:
        logger.warning("fed.init without tls_config: parties are not authenticated and data "
                       "crosses the network in clear text")
        _warned_no_tls = True
    if cfg.comm.allow_unsafe_deserialization:
        logger.warning("allow_unsafe_deserialization is set: values from other parties are unpickled "
                       "without an allow-list, so any peer can run code in party %r", cfg.party)
    if cfg.comm.exit_on_sending_failure:
        _let_fed_interrupt_main()
    owns_ray = not ray.is_initialized()
    if owns_ray:
        ray.init(address=address or "local", **_lean(address))
    try:
        try:
            sender, receiver = transport.start(cfg)
        except Exception as exc:
            raise _public(exc) from None
        return context.Runtime(cfg, sender, receiver, owns_ray, on_failure)
    except BaseException:
        if owns_ray:
            ray.shutdown()
        raise


def _lean(address: str | None) -> dict[str, Any]:
    """``ray.init`` options when fed starts a new Ray for this party (``address`` None or ``local``):
    no dashboard (a process of about 50 MB that a party does not need; start Ray yourself, or with
    ``ray start``, to have one). Joining a running cluster takes it as it is."""
    return {"include_dashboard": False} if address in (None, "local") else {}


def _start_single(cfg: FedConfig, address: str | None) -> single.SingleRuntime:
    """This process plays every party: one Ray cluster, each party's work placed by its resource."""
    parties = list(cfg.addresses)
    owns_ray = not ray.is_initialized()
    place = len(parties) <= single.PLACED_AT_MOST
    if owns_ray:
        local = address in (None, "local")
        ray.init(address=address or "local", **_lean(address),
                 **({"resources": single.ray_resources(parties)} if local and place else {}))
    missing = [p for p in parties if single.resource(p) not in ray.cluster_resources()]
    named = ", ".join(parties[:5]) + (f" and {len(parties) - 5} more" if len(parties) > 5 else "")
    if not place and owns_ray:
        logger.info("single-controller mode: %d parties are not placed per party on the Ray fed starts (at most "
                    "%d are: Ray's scheduling slows with every custom resource)", len(parties), single.PLACED_AT_MOST)
    elif missing:
        logger.warning("single-controller mode: this Ray cluster has no resource %s, so parties' tasks and "
                       "actors are not placed per party; start Ray with resources=%s to place them",
                       single.resource(missing[0]), clip(repr(single.ray_resources(parties)), 200))
    logger.info("single-controller mode: this process plays parties %s", named)
    return single.SingleRuntime(cfg, owns_ray, placed=not missing)


def _public(exc: BaseException) -> BaseException:
    """The user-facing error inside Ray's wrapper: fed's own errors and OS errors, else ``exc``."""
    cause = unwrap(exc)
    if isinstance(cause, FedRemoteError):
        return FedRemoteError(cause.src_party, cause.error_type, cause.cause)
    if isinstance(cause, (FedError, OSError)):
        return cause
    return exc


def get(objects: Any) -> Any:
    """The value(s) of a FedObject or a list of them, at every party.

    The owner pushes the value to every party that has not received it yet; the others wait for it.
    A value whose task failed raises: at the owner the task's own exception, elsewhere
    ``FedRemoteError`` naming the owner. Inside a task, ``fed.get`` of a Ray ObjectRef is ``ray.get``.

    >>> fed.get(total)            # doctest: +SKIP
    5
    >>> fed.get([x, y])           # doctest: +SKIP
    [2, 3]
    """
    if isinstance(objects, ray.ObjectRef) or (
        isinstance(objects, list) and objects and all(isinstance(o, ray.ObjectRef) for o in objects)
    ):
        return ray.get(objects)
    one = isinstance(objects, FedObject)
    items = [objects] if one else list(objects)
    bad = [o for o in items if not isinstance(o, FedObject)]
    if bad:
        raise TypeError(f"fed.get takes a FedObject or a list of them, got {type(bad[0]).__name__}")
    runtime = context.current()
    try:
        values = runtime.get(items)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(unwrap(exc), FedError):
            raise _public(exc) from exc
        raise
    return values[0] if one else values


def kill(actor: FedActorHandle, *, no_restart: bool = True) -> None:
    """Kill a fed actor at its party (a no-op at the other parties).

    As with ``ray.kill``, the kill takes effect asynchronously: a call made right after it may
    still run; later calls fail at the owner and raise ``FedRemoteError`` at the other parties.
    """
    if not isinstance(actor, FedActorHandle):
        raise TypeError(f"fed.kill takes an actor handle, got {type(actor).__name__}")
    runtime = context.current()
    runtime.check_session(actor)
    if runtime.runs_here(actor.owner):
        if actor._made is not None:
            actor._made.result()  # its creation or a call was held for values from peers: Ray has it once done
        ray.kill(actor._ray_handle, no_restart=no_restart)


def audit_log() -> list[dict[str, Any]]:
    """What left this party in the current job (or, after ``fed.shutdown``, the last one).

    One entry per push to another party, oldest first: ``job``, ``source``, ``destination``,
    ``object_id``, ``function`` (the producing function or method), ``fingerprint``, ``bytes``,
    ``started`` and ``time`` (Unix seconds), and ``outcome``: ``sent``, ``error`` (the producing
    task failed, so only an error report left) or ``failed`` (with a ``reason``). With
    ``config={'audit_log_file': path}`` every entry is also appended to ``path`` as one JSON line.
    """
    runtime = context.active()
    log = runtime.audit if runtime is not None else _last_audit
    return log.entries() if log is not None else []


def stats() -> dict[str, Any]:
    """What moved between this party and each peer in the current job, and what waits.

    ``peers`` maps each peer to ``sent_values``, ``sent_bytes``, ``push_seconds_mean`` and
    ``push_seconds_max`` (from a value being ready to its delivery), ``sent_mb_per_s``,
    ``retries``, ``refusals`` (the peer or the size limit refused a value), ``failures`` (pushes
    given up), ``received_values``, ``received_bytes`` and ``duplicates`` (dropped). ``total``
    sums them over the peers and adds ``refused`` (pushes this party refused); ``waiting`` counts
    the values received (or being received) but not consumed yet, and their ``bytes``. The same
    numbers are exported as Ray metrics (``ray_fed_*`` on each node's Prometheus endpoint).
    """
    return context.current().stats()


def shutdown(on_error: bool | None = None) -> None:
    """Wait for pending pushes, tell the peers, stop the receiver and sender, and Ray if fed started it.

    Called while an exception propagates (from an ``except`` or ``finally`` block, or by ``atexit``
    after an uncaught exception or Ctrl+C), it waits only briefly (5 s) for pushes and tells the
    peers this party aborted: their waits for values from it raise ``FedRemoteError`` at once.
    Otherwise it waits up to 60 s for pushes in flight, then tells the peers this party finished.

    ``on_error=True`` (RayFed 0.2) says the program stops because of an error: pushes in flight
    are stopped at once and the peers are told this party aborted. ``on_error=False`` is a normal
    end even while an exception propagates. With ``continue_waiting_for_data_sending_on_error``
    set, a shutdown on error still waits up to 60 s for pushes in flight.
    """
    if on_error not in (None, True, False):
        raise TypeError(f"fed.shutdown(on_error=...) takes True, False or None, got {on_error!r}")
    runtime = context.active()
    if runtime is None:
        return
    runtime.closing = True
    context.set_current(None)
    excepthook.uninstall()
    global _last_audit
    _last_audit = runtime.audit
    failure = runtime.failure or sys.exc_info()[1]
    push_wait = None  # as the runtime decides: 60 s, or 5 s after an error
    if on_error is False:
        failure = None
    elif on_error:
        failure = failure or FedError("the program called fed.shutdown(on_error=True)")
        push_wait = 0.0
    if failure is not None and runtime.config.comm.continue_waiting_for_data_sending_on_error:
        push_wait = context.SHUTDOWN_WAIT_S
    try:
        runtime.stop(failure, push_wait)
    finally:
        registry.thaw()
        runtime.audit.close()
        if runtime.owns_ray:
            ray.shutdown()
