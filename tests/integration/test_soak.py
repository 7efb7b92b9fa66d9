"""Exactly-once delivery under load: three parties, random placement and delays.

The full soak (10,000 small and 50 large values) is marked ``soak`` and left out of the default
run: ``pytest -m soak tests/integration/test_soak.py``. CI runs a tenth of it.
"""

from __future__ import annotations

import json
import re

import pytest
from harness import addresses, assert_ok, run_script


@pytest.mark.parametrize("small, large", [
    (1000, 5),
    pytest.param(10_000, 50, marks=[pytest.mark.soak, pytest.mark.timeout(1800)]),
])
def test_every_value_arrives_exactly_once(small, large):
    parties = run_script("soak.py", addresses("alice", "bob", "carol"), str(small), str(large),
                         timeout=1700)

    assert_ok(parties)
    for name, party in parties.items():
        assert f"{name} SOAK OK" in party.output
        print(re.search(rf"{name} SOAK OK.*", party.output).group(0))  # shown with pytest -s
        counts = json.loads(re.search(rf"{name} COUNTS (.*)", party.output).group(1))
        # Each item makes every party receive exactly one value (see soak.py).
        assert counts == {"values": small + large, "duplicates": 0, "buffered_bytes": 0}, counts
