"""Text that came from a peer, made safe to put in a log line or an error: escaped and truncated."""

from __future__ import annotations

from typing import Any

LIMIT = 200


def clip(value: Any, limit: int = LIMIT) -> str:
    """``value`` as printable ASCII (newlines, control and non-ASCII characters escaped), at most
    ``limit`` characters of it, followed by ``...(N chars)`` when it was longer. A value that is
    not a string shows only its type: its repr could be long or slow to make."""
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    shown = "".join(c if " " <= c <= "~" and c != "\\" else _escape(c) for c in value[:limit])
    return shown if len(value) <= limit else f"{shown}...({len(value)} chars)"


def _escape(c: str) -> str:
    code = ord(c)
    if c == "\\":
        return "\\\\"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
