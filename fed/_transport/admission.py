"""What the receiver checks before it holds anything for a peer, and how much a push makes it hold.

Every message names its job and source party; the source must be a peer of this job and, with TLS,
named exactly by the client's certificate (``fed._security.identity``). A push's header must also
be addressed to this party and declare a size within ``messages_max_size_in_bytes``. A refusal
carries two texts: ``public``, fed's own words for the sender (nothing the sender sent is echoed
back), and ``detail`` for this party's log, with the peer's fields truncated and escaped.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from fed._config import FedConfig
from fed._security.untrusted import clip
from fed._serialization import codec
from fed._transport import compression, wire
from fed._transport.link import Refusal, Refused

__all__ = ["SLOT_COST", "Refused", "check_header", "check_source", "describe", "holding_cost"]

# Bytes this party holds per stored value besides its payload and its decoded form: the slot,
# its key, the header and the bookkeeping around it.
SLOT_COST = 1024


def check_source(config: FedConfig, job: Any, src: Any, names: Set[str]) -> str:
    """``src`` if the message is for this job and comes from one of its peers (with TLS, named by
    the caller's certificate: ``names``, as the link read them); else ``Refused``."""
    if job != config.job_name:
        raise Refused(Refusal.UNKNOWN_JOB, "unknown job", f"job {clip(job, 130)}")
    if not isinstance(src, str) or src not in config.addresses or src == config.party:
        raise Refused(Refusal.NOT_PERMITTED, "unknown source party", f"src {clip(src, 130)}")
    if config.tls is not None:
        if config.tls.name_of(src) not in names:
            raise Refused(Refusal.NOT_PERMITTED,
                          f"the client certificate does not name the claimed source party {src!r}",
                          f"it names {clip(', '.join(sorted(names)[:5]) or 'no party', 200)}")
    return src


def check_header(config: FedConfig, header: wire.Header, names: Set[str]) -> None:
    """A push's header: addressed here, from a peer, compressed (if at all) so that this party can
    decompress it, within the size limit (which counts payload bytes: decompressed)."""
    if header.dst != config.party:
        raise Refused(Refusal.MALFORMED, "push addressed to another party", f"dst {clip(header.dst, 130)}")
    check_source(config, header.job, header.src, names)
    if header.compression is not None and not compression.available(header.compression):
        raise Refused(Refusal.MALFORMED,
                      f"party {config.party!r} cannot decompress {header.compression} (its zstandard package is not "
                      f"installed): {compression.INSTALL} there, or do not compress pushes to it")
    limit = config.comm.messages_max_size_in_bytes
    if header.total_size > limit:
        raise Refused(Refusal.TOO_LARGE,
                      f"value of {header.total_size} bytes exceeds this party's messages_max_size_in_bytes={limit}")


def holding_cost(header: wire.Header, frame_size: int) -> int:
    """Bytes this party holds for a push, counted against ``max_buffered_bytes`` from admission
    until its value is consumed: the payload, what decoding it can grow to, the header, the slot."""
    grows = codec.holding_bound(header.segments, header.copied) if header.codec == codec.NAME else 0
    return header.total_size + grows + frame_size + SLOT_COST


def describe(header: wire.Header) -> str:
    """A header's value for a log line: object id and fingerprint, truncated and escaped."""
    return f"{clip(header.object_id, 80)} ({clip(header.fingerprint, 200)})"
