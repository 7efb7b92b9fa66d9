"""Which names a peer's TLS certificate carries, read directly when fed's channel cannot connect.

gRPC refuses a server whose certificate does not carry the name it expects and keeps retrying
without saying why, so a job whose certificates do not name the parties (one shared server
certificate, say) would wait out ``timeout_in_ms`` and report only a deadline. After a first
failed try, the sender asks the server for its certificate itself (a plain TLS handshake, no
client certificate, nothing sent) and, if the certificate does not carry the expected name,
fails at once saying which names it carries and how to fix it.
"""

from __future__ import annotations

import asyncio
import ssl

from fed._security.identity import names_in
from fed._security.untrusted import clip

PROBE_TIMEOUT_S = 1.0


async def presented_names(address: str, timeout: float = PROBE_TIMEOUT_S) -> frozenset[str] | None:
    """The names in the certificate the server at ``address`` presents; None if it could not be read."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        pem = await asyncio.wait_for(asyncio.to_thread(ssl.get_server_certificate, (host, int(port)),
                                                       timeout=timeout), timeout + 0.5)
    except (OSError, ValueError, asyncio.TimeoutError):
        return None
    return names_in(pem.encode())


def mismatch(dst: str, address: str, expected: str, names: frozenset[str]) -> str:
    """What to tell the user when party ``dst``'s certificate does not carry ``expected``."""
    shown = ", ".join(repr(clip(n, 64)) for n in sorted(names)[:5]) or "no DNS name"
    return (f"party {dst!r} at {address} presents a TLS certificate for {shown}, not {expected!r}: fed binds each "
            f"party to the name its certificate carries. Give every party a certificate naming it (fed certs "
            f"--parties ... --out DIR makes them), or say which name each party's certificate carries with "
            f"tls_config['party_cert_names'] = {{{dst!r}: {clip(sorted(names)[0], 64)!r}, ...}} at every party "
            "(a certificate that several parties share then proves only that its holder is one of them)"
            if names else
            f"party {dst!r} at {address} presents a TLS certificate that carries no DNS name, so it names no party: "
            "give every party a certificate naming it (fed certs --parties ... --out DIR makes them)")
