"""A party's calls in order, as a running digest, to find where two parties' programs diverged.

Every ``.remote()`` appends its fingerprint: ``digest[i]`` hashes ``digest[i-1]`` with call
``i + 1``'s fingerprint, so two parties made the same first ``n`` calls exactly when their digests
at ``n - 1`` agree, and the first index where the digests differ is the first differing call. The
digests cost 8 bytes per call; only the last ``KEEP`` fingerprints are kept, to name the calls.

The driver appends (``add``); when it has been blocked in ``fed.get`` for a second it hands what is
new to its receiver (``take_new`` → ``extend``), whose pings compare digests with the peers'.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import deque

KEEP = 10_000


class CallLog:
    def __init__(self) -> None:
        self._digests = array("Q")
        self._recent: deque[str] = deque(maxlen=KEEP)
        self._handed = 0  # calls already handed to the receiver

    def __len__(self) -> int:
        return len(self._digests)

    def add(self, fingerprint: str) -> None:
        last = self._digests[-1] if self._digests else 0
        step = hashlib.blake2b(last.to_bytes(8, "little") + fingerprint.encode(), digest_size=8).digest()
        self._digests.append(int.from_bytes(step, "little"))
        self._recent.append(fingerprint)

    def digest(self, n: int) -> int:
        """The running digest after the first ``n`` calls (``n >= 1``)."""
        return self._digests[n - 1]

    def digests(self, n: int) -> bytes:
        """The first ``n`` running digests, packed."""
        return self._digests[:n].tobytes()

    def fingerprint(self, n: int) -> str | None:
        """The fingerprint of call ``n`` (1-based), if it is among the last ``KEEP``."""
        first = len(self._digests) - len(self._recent) + 1
        return self._recent[n - first] if first <= n <= len(self._digests) else None

    def take_new(self) -> tuple[int, bytes, list[str]]:
        """What was added since the last call: (first call number - 1, digests, last fingerprints)."""
        start, end = self._handed, len(self._digests)
        self._handed = end
        fingerprints = list(self._recent)[-(end - start):] if end > start else []
        return start, self._digests[start:end].tobytes(), fingerprints

    def extend(self, start: int, digests: bytes, fingerprints: list[str]) -> None:
        """Append what another log's ``take_new`` returned (``start`` must be this log's length)."""
        if start != len(self._digests):
            raise ValueError(f"call log out of step: have {len(self._digests)} calls, got calls from {start}")
        self._digests.frombytes(digests)
        self._recent.extend(fingerprints)


def first_difference(mine: bytes, theirs: bytes) -> int:
    """The 1-based number of the first call whose running digests differ (0 if none)."""
    a, b = array("Q"), array("Q")
    a.frombytes(mine)
    b.frombytes(theirs)
    lo, hi = 0, min(len(a), len(b))  # digests chain: once different, different from then on
    if hi == 0 or a[hi - 1] == b[hi - 1]:
        return 0
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] == b[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo + 1
