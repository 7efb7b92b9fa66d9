"""mutmut helper (only in /tmp/mut): run fast tests first so that a killed mutant dies early (-x).
Only the order changes, never which tests run."""


def _weight(nodeid: str) -> int:
    if nodeid.startswith("tests/unit/"):
        return 2 if "test_codec_fuzz" in nodeid or "test_codec_bounds" in nodeid or "test_cli_run" in nodeid else 0
    if "test_hostile" in nodeid:
        return 4 if "slow_decode" in nodeid else 3
    return 5


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: _weight(item.nodeid))
