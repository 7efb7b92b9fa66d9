"""Unknown keys in what the user passes to fed are errors that suggest the nearest known key."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any


def reject_unknown(kind: str, given: Mapping[str, Any], known: tuple[str, ...] | list[str]) -> None:
    """``ValueError`` naming the keys of ``given`` not in ``known`` (``timeout_ms``: did you mean
    ``timeout_in_ms``?) and listing the valid ones."""
    unknown = sorted(set(given) - set(known), key=str)
    if unknown:
        hints = [f"did you mean {close[0]!r} for {key!r}?" for key in unknown if isinstance(key, str)
                 and (close := difflib.get_close_matches(key, list(known), n=1, cutoff=0.6))]
        raise ValueError(f"unknown {kind} key(s) {unknown}" + (f" ({' '.join(hints)})" if hints else "")
                         + f"; valid keys are {sorted(known)}")
